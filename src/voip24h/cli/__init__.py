"""The voip24h command line: click groups, one module each; main.py assembles them."""
