"""A minimal Django project for the recipes."""
