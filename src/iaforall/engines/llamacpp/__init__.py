"""llama.cpp through xllamacpp, one supervised worker process per loaded model."""
