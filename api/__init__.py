"""The thin HTTP layer (webhooks in, REST out) and the command line: the composition roots."""
