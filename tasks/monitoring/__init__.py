"""Monitoring: deprecation watch over running containers, alerts, Prometheus Pushgateway metrics."""
