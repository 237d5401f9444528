"""inrkit.inr.train: trainers of the shared models (``inrkit train NAME``), apart from the models and the CLI."""
