"""The built-in adapters. Each is registered in pyproject.toml under the `hub.adapters`
entry-point group, exactly as a third-party adapter package would be."""
