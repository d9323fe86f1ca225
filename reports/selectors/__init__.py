"""Every read that is more than a one-liner, one module per sub-domain."""
