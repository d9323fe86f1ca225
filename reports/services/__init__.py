"""Every write Hotline makes, one module per sub-domain."""
