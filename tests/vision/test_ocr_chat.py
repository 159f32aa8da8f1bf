"""Images with English and French text, through the `openai` SDK, to the real server and model:
the prompt the model is given holds the OCR'd words under a label that says they were OCR'd."""

from __future__ import annotations

import openai

from tests.real_server import SMOL, RealServer
from tests.vision.images import data_url, text_png

LABEL = "text read by OCR (rapidocr); the model cannot see the image itself"


def test_images_are_read_into_a_labelled_prompt(server: RealServer) -> None:
    client = openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0)
    english = data_url(text_png("The lighthouse keeper", "counts seven ships"))
    french = data_url(text_png("Le phare éclaire la côte", "près du château"))
    blank = data_url(text_png())
    messages = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "What do these images say?"},
                {"type": "image_url", "image_url": {"url": english}},
                {"type": "image_url", "image_url": {"url": french, "detail": "low"}},
                {"type": "image_url", "image_url": {"url": blank}},
            ],
        }
    ]
    raw = client.chat.completions.with_raw_response.create(
        model=SMOL,
        messages=messages,  # type: ignore[arg-type]
        max_tokens=8,
        extra_body={"iaforall": {"return_prompt": True}},
    )
    answer = raw.parse()
    assert answer.choices[0].message.content
    prompt = raw.http_response.json()["iaforall"]["prompt"]
    assert "What do these images say?" in prompt
    assert f"[Image 1: {LABEL}]\nThe lighthouse keeper\ncounts seven ships" in prompt
    assert f"[Image 2: {LABEL}]\nLe phare éclaire la côte\nprès du château" in prompt
    assert "[Image 3: OCR (rapidocr) found no text in it" in prompt
