"""The dubbing model in the diffusers shape: tensors in, tensors out; weights only via save/from_pretrained."""
