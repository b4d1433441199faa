"""Training and evaluation over mmengine."""
