"""Mode C, the self-hosted metering gateway: a reverse proxy that records usage-only events from the
provider responses it passes on. It sees full prompts in transit; it stores and logs none of them."""
