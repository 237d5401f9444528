"""The three kinds of signal inrkit handles, in the order the ``.inrk`` container codes them."""

MODALITIES = ("image", "video", "audio")
