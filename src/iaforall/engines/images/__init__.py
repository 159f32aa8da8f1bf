"""Images out: text-to-image with few-step latent diffusion models (SD-Turbo, SDXS class) in
their ONNX export, run by ONNX Runtime with a numpy scheduler in a worker process of its own
(docs/images.md says why this engine). `folder.py`: what a model folder holds;
`sampler.py`: the scheduler; `tokenizer.py`: CLIP's tokenizer; `drawing.py`: the pipeline (in the
worker); `worker.py`: the worker's program; `runtime.py`: the server's side of it."""
