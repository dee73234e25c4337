"""Services the managed images run."""
