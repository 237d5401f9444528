"""inrkit.inr.fields: coordinate fields (SIREN, SPDER, Poly-INR, Fourier-feature MLP, hash grid)."""
