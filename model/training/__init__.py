"""Training of the dubbing pipeline on the synthetic talking-face corpus: `redub train CONFIG`.

Stages run in order and each resumes where it stopped: `corpus` (synthetic pairs cut into training windows),
`vae` (the 3D VAE from scratch), `audio` (the audio encoder learns the mouth from speech), `latents` (every
window encoded once, so DiT epochs never touch pixels), `dit` (masked flow matching), `decoder` (the VAE
decoder trained on with the encoder frozen, beside or after the DiT), `export` (a pipeline folder with its
model card).
"""
