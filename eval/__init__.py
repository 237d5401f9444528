"""inrkit.eval: metrics, rate–distortion sweeps, BD-rate and plots."""
