"""Delivery channels: MQTT, webhook, e-mail. Each raises DeliveryError on failure."""
