"""One adapter module per family quirk; registry.py maps model_type to them."""
