"""Channel adapters: one module per provider, each behind the ChannelAdapter protocol."""
