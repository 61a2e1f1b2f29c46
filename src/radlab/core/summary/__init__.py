"""What a finished run says about itself, gathered from its files: `radlab card` and `radlab compare`."""
