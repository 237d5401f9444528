"""inrkit.inr.latents: overfitted latent-grid models (SHACIRA's hash latents, Cool-chic's latent pyramid)."""
