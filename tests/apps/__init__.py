"""Small real-framework applications the tests (and real servers in subprocesses) serve."""
