"""Reports: attribution of orders to messages, metric math, and the named report queries."""
