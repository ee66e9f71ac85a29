"""Webhooks: Standard Webhooks signing, delivery with retries, the delivery log."""
