"""Done-when of the documents issue, on the real server: a French question about a folder of a
PDF and a Word file, answered by the real qwen2.5-coder:0.5b through the unchanged `openai`
SDK, cites the right file and page."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import openai

from tests.knowledge.documents import docx, text_pdf
from tests.real_server import QWEN, RealServer

STATUTES = [
    ["Statuts de l'association Les Jardins du Port.", "Article 1 : l'association a pour but",
     "d'entretenir les jardins partagés du quartier."],
    ["Article 7 : les cotisations annuelles sont de 15 euros.",
     "Elles sont réglées avant le 31 décembre, auprès de la trésorière."],
    ["Article 12 : l'assemblée générale se réunit chaque année en mars."],
]  # fmt: skip


def settled(client: httpx.Client, kb: str, file_id: str) -> dict[str, Any]:
    for _ in range(600):
        found: dict[str, Any] = client.get(f"/v1/knowledge_bases/{kb}/files/{file_id}").json()
        if found["status"] in ("ready", "failed"):
            return found
        time.sleep(0.1)
    raise AssertionError(f"still {found['status']}")


def test_a_french_question_is_answered_with_the_right_file_and_page(
    server: RealServer, tmp_path: Path
) -> None:
    pdf = text_pdf(tmp_path / "statuts.pdf", STATUTES)
    word = docx(tmp_path / "notes.docx")
    with httpx.Client(base_url=server.url, timeout=60) as client:
        kb = client.post("/v1/knowledge_bases", json={"name": "Association"}).json()["id"]
        with pdf.open("rb") as a, word.open("rb") as b:
            sent = client.post(
                f"/v1/knowledge_bases/{kb}/files",
                files=[("file", ("statuts.pdf", a)), ("file", ("notes.docx", b))],
            )
        assert sent.status_code == 202, sent.text
        for file in sent.json()["data"]:
            assert settled(client, kb, file["id"])["status"] == "ready"

    sdk = openai.OpenAI(base_url=server.v1, api_key="unused", max_retries=0)
    question = "Avant quelle date faut-il régler les cotisations ?"
    raw = sdk.chat.completions.with_raw_response.create(
        model=QWEN,
        messages=[{"role": "user", "content": question}],
        max_tokens=48,
        temperature=0,
        extra_body={"iaforall": {"knowledge": {"bases": [kb], "k": 3}}},
    )
    answer = raw.parse().choices[0].message.content or ""
    first = raw.http_response.json()["iaforall"]["citations"][0]
    assert (first["document"], first["page"], first["location"]) == ("statuts.pdf", 2, "page 2")
    assert "31 décembre" in first["text"]
    assert "31 décembre" in answer, answer
