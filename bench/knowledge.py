"""Knowledge bases on this machine: ingestion speed, retrieval latency and recall.

    .venv/bin/python bench/knowledge.py [--sizes 10000 100000] [--questions 200] [--json]
                                        [--mix] [--database-url URL] [--cache DIR]

A benchmark, not a test: it prints its figures and exits 0 whatever they are. It calls the
code the server runs (`iaforall.embeddings` encoder, `iaforall.knowledge.index.KnowledgeIndex` on
a fresh SQLite database, or PostgreSQL with --database-url), in this process, without HTTP.

The corpus is synthetic but realistic: short articles (3-5 sentences, ~300 characters, in
English and French) from six domains (sport, town hall, school and library, farming, health,
culture), built from templates with names, places, years and quantities, so that many passages
share words and entities. Every passage tells of one thing an organisation did (48 kinds); for
`--questions` of them (all within the smallest size) the question set asks about that fact in
other words (synonyms, another sentence shape), about 80 % in the passage's language and 20 %
in the other one (an English question about a French passage and the other way round).
recall@5 = share of questions whose passage is among the first 5 results.

Vectors: every passage is embedded for real with the built-in encoder, on one thread as served
(~190 passages/s here: ~9 minutes for 100k), and cached on disk, so later runs start at once.
`--mix` is the quick variant: only the smallest size is embedded, and each extra passage of
the bigger ones is two real passages' sentences interleaved, given the normalised sum of their
two vectors (the benchmark prints how close that is to the true embedding; latency does not
depend on it, but recall does: at 100k it gave vector recall 0.56 where real vectors give 0.40).

Targets (issue 6): p95 <= 50 ms at 100k chunks; recall@5 >= 0.9.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import resource
import statistics
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from iaforall.embeddings.encoder import SentenceEncoder
from iaforall.knowledge.index import MODES, KnowledgeIndex
from iaforall.store.database import Database

K = 5

# -- the corpus -------------------------------------------------------------------------------

FIRST = [
    "Marie", "Jean", "Sophie", "Pierre", "Amina", "Lucas", "Chloé", "Karim", "Élodie", "Hugo",
    "Nadia", "Thomas", "Inès", "Julien", "Camille", "Olivier", "Léa", "Mathis", "Sarah", "Yanis",
    "Emma", "Noah", "Alice", "Samuel", "Zoé", "Arthur", "Manon", "Louis", "Jade", "Gabriel",
    "Anaïs", "Bastien", "Clara", "Damien", "Eva", "Fabien", "Gaëlle", "Henri", "Isabelle", "Jules",
    "Kenza", "Lina", "Malik", "Nina", "Oscar", "Pauline", "Quentin", "Rose", "Simon", "Théo",
]  # fmt: skip
LAST = [
    "Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy",
    "Moreau", "Simon", "Laurent", "Lefebvre", "Michel", "Garcia", "David", "Bertrand", "Roux",
    "Vincent", "Fournier", "Morel", "Girard", "André", "Mercier", "Dupont", "Lambert", "Bonnet",
    "François", "Martinez", "Legrand", "Garnier", "Faure", "Rousseau", "Blanc", "Guerin", "Muller",
    "Henry", "Roussel", "Nicolas", "Perrin", "Morin", "Mathieu", "Clement", "Gauthier", "Dumont",
    "Lopez", "Fontaine", "Chevalier", "Robin", "Masson", "Sanchez", "Boyer", "Denis", "Lemaire",
]  # fmt: skip
PLACES = [
    "Annecy", "Brest", "Colmar", "Dijon", "Grenoble", "Limoges", "Lorient", "Metz", "Nancy",
    "Nîmes", "Pau", "Poitiers", "Quimper", "Reims", "Rennes", "Rouen", "Tours", "Troyes",
    "Valence", "Vannes", "Albi", "Arles", "Bayonne", "Besançon", "Chartres", "Cholet", "Épinal",
    "Laval", "Mâcon", "Niort", "Orléans", "Périgueux", "Roanne", "Saintes", "Sète", "Vichy",
    "Agen", "Auxerre", "Blois", "Cahors", "Dax", "Dole", "Évreux", "Gap", "Guéret", "Lens",
    "Lisieux", "Millau", "Morlaix", "Nevers", "Rodez", "Sedan", "Tarbes", "Vienne", "Vierzon",
]  # fmt: skip

# Domains, each with its own words: what an organisation did (English noun, French noun, verb,
# French verb, the verb a question uses, its French one) and what else its articles say.
DOMAINS: list[dict[str, Any]] = [
    {
        "orgs": [
            ("the cycling club", "le club de cyclisme"),
            ("the sailing school", "l'école de voile"),
        ],
        "things": [
            ("bicycles", "vélos", "bought", "a acheté", "purchase", "acquis"),
            ("boats", "bateaux", "rented", "a loué", "hire", "pris en location"),
            ("helmets", "casques", "ordered", "a commandé", "get", "obtenu"),
            ("kayaks", "kayaks", "lent", "a prêté", "loan", "mis à disposition"),
            ("life jackets", "gilets de sauvetage", "checked", "a vérifié", "inspect", "contrôlé"),
            ("trophies", "trophées", "won", "a remporté", "win", "gagné"),
            ("bike racks", "arceaux à vélos", "installed", "a installé", "put up", "posé"),
            ("swimming lessons", "cours de natation", "organised", "a organisé", "run", "donné"),
        ],
        "en": [
            "{org_cap} of {place} trains {n} riders and sailors every week.",
            "Races along the coast near {place} drew crowds in {month}.",
            "{person} coaches the beginners on {day} mornings.",
            "The club's boathouse was repainted after the storm of {year}.",
        ],
        "fr": [
            "{org_fr} de {place} entraîne {n} sportifs chaque semaine.",
            "Les courses le long de la côte près de {place} ont attiré la foule en {month_fr}.",
            "{person} encadre les débutants le {day_fr} matin.",
            "Le hangar à bateaux a été repeint après la tempête de {year}.",
        ],
    },
    {
        "orgs": [
            ("the town council", "le conseil municipal"),
            ("the fire brigade", "la caserne des pompiers"),
        ],
        "things": [
            ("lamps", "lampes", "replaced", "a remplacé", "change", "changé"),
            ("benches", "bancs", "repaired", "a réparé", "fix", "remis en état"),
            ("fire hydrants", "bornes incendie", "checked", "a vérifié", "inspect", "contrôlé"),
            ("parking spaces", "places de stationnement", "created", "a créé", "add", "aménagé"),
            ("speed bumps", "ralentisseurs", "built", "a construit", "lay", "installé"),
            (
                "smoke alarms",
                "détecteurs de fumée",
                "distributed",
                "a distribué",
                "hand out",
                "remis",
            ),
            ("flower beds", "massifs de fleurs", "planted", "a planté", "sow", "semé"),
            ("potholes", "nids-de-poule", "filled", "a rebouché", "repair", "comblé"),
        ],
        "en": [
            "The council of {place} voted a budget of {n} thousand euros for the roads.",
            "A public meeting about traffic and parking was held in {place} in {month}.",
            "Mayor {person} promised a new roundabout before {year}.",
            "Firefighters answered {n} calls last year, mostly for flooded cellars.",
        ],
        "fr": [
            "Le conseil de {place} a voté un budget de {n} mille euros pour la voirie.",
            "Une réunion publique sur la circulation a eu lieu à {place} en {month_fr}.",
            "Le maire {person} a promis un nouveau rond-point avant {year}.",
            "Les pompiers sont intervenus {n} fois l'an dernier, surtout pour des caves inondées.",
        ],
    },
    {
        "orgs": [
            ("the primary school", "l'école primaire"),
            ("the public library", "la bibliothèque municipale"),
        ],
        "things": [
            ("books", "livres", "collected", "a collecté", "gather", "rassemblé"),
            ("computers", "ordinateurs", "donated", "a donné", "give away", "offert"),
            ("dictionaries", "dictionnaires", "lent", "a prêté", "loan", "mis à disposition"),
            ("tablets", "tablettes", "bought", "a acheté", "purchase", "acquis"),
            ("school trips", "sorties scolaires", "organised", "a organisé", "arrange", "préparé"),
            ("comic books", "bandes dessinées", "catalogued", "a catalogué", "list", "répertorié"),
            ("reading lamps", "lampes de lecture", "replaced", "a remplacé", "change", "changé"),
            ("scholarships", "bourses", "awarded", "a attribué", "grant", "accordé"),
        ],
        "en": [
            "Pupils of {place} read {n} novels during the spring reading challenge.",
            "The library stays open late on {day} evenings for students.",
            "Teacher {person} started a chess workshop in {year}.",
            "Parents asked for a safer crossing in front of the school in {month}.",
        ],
        "fr": [
            "Les élèves de {place} ont lu {n} romans pendant le défi lecture du printemps.",
            "La bibliothèque reste ouverte tard le {day_fr} soir pour les étudiants.",
            "L'enseignante {person} a lancé un atelier d'échecs en {year}.",
            "Les parents ont demandé un passage piéton plus sûr devant l'école en {month_fr}.",
        ],
    },
    {
        "orgs": [
            ("the farmers' cooperative", "la coopérative agricole"),
            ("the beekeepers' union", "le syndicat des apiculteurs"),
        ],
        "things": [
            ("trees", "arbres", "planted", "a planté", "plant", "mis en terre"),
            ("beehives", "ruches", "built", "a construit", "make", "fabriqué"),
            ("hedges", "haies", "trimmed", "a taillé", "cut", "coupé"),
            ("tractors", "tracteurs", "shared", "a mutualisé", "pool", "partagé"),
            ("sheep", "moutons", "sheared", "a tondu", "shear", "tondu"),
            ("apple trees", "pommiers", "grafted", "a greffé", "graft", "greffé"),
            ("jars of honey", "pots de miel", "sold", "a vendu", "sell", "écoulé"),
            ("irrigation pipes", "tuyaux d'irrigation", "laid", "a posé", "install", "installé"),
        ],
        "en": [
            "The wheat harvest around {place} reached {n} tonnes despite the dry {month}.",
            "Honey from the hills above {place} won a prize in {year}.",
            "{person} sells vegetables at the market every {day}.",
            "Farmers worry about the price of fertiliser and diesel.",
        ],
        "fr": [
            "La moisson de blé autour de {place} a atteint {n} tonnes malgré un {month_fr} sec.",
            "Le miel des collines de {place} a été primé en {year}.",
            "{person} vend ses légumes au marché chaque {day_fr}.",
            "Les agriculteurs s'inquiètent du prix des engrais et du gazole.",
        ],
    },
    {
        "orgs": [("the hospital", "l'hôpital"), ("the retirement home", "la maison de retraite")],
        "things": [
            ("meals", "repas", "served", "a servi", "provide", "distribué"),
            ("beds", "lits", "added", "a ajouté", "open", "ouvert"),
            ("vaccines", "vaccins", "administered", "a administré", "give", "injecté"),
            ("wheelchairs", "fauteuils roulants", "repaired", "a réparé", "fix", "remis en état"),
            ("blood donations", "dons du sang", "collected", "a recueilli", "gather", "collecté"),
            ("nurses", "infirmières", "hired", "a embauché", "recruit", "recruté"),
            ("masks", "masques", "ordered", "a commandé", "get", "obtenu"),
            ("home visits", "visites à domicile", "made", "a effectué", "carry out", "réalisé"),
        ],
        "en": [
            "The emergency ward of {place} treated {n} patients during the heatwave of {month}.",
            "Doctor {person} warned about the shortage of nurses.",
            "Visiting hours change on {day} because of the works.",
            "A new scanner should arrive in {year}, paid for by the region.",
        ],
        "fr": [
            "Les urgences de {place} ont soigné {n} patients pendant la canicule de {month_fr}.",
            "Le docteur {person} alerte sur le manque d'infirmières.",
            "Les horaires de visite changent le {day_fr} à cause des travaux.",
            "Un nouveau scanner devrait arriver en {year}, payé par la région.",
        ],
    },
    {
        "orgs": [("the museum", "le musée"), ("the theatre company", "la compagnie de théâtre")],
        "things": [
            ("paintings", "tableaux", "restored", "a restauré", "repair", "remis en état"),
            ("tickets", "billets", "sold", "a vendu", "sell", "écoulé"),
            ("costumes", "costumes", "sewn", "a cousu", "make", "confectionné"),
            ("sculptures", "sculptures", "lent", "a prêté", "loan", "mis à disposition"),
            ("guided tours", "visites guidées", "organised", "a organisé", "run", "animé"),
            ("posters", "affiches", "printed", "a imprimé", "print", "tiré"),
            (
                "old photographs",
                "photographies anciennes",
                "digitised",
                "a numérisé",
                "scan",
                "scanné",
            ),
            ("rehearsals", "répétitions", "held", "a tenu", "hold", "organisé"),
        ],
        "en": [
            "The exhibition in {place} welcomed {n} visitors in its first month.",
            "Curator {person} found letters dating from {year} in the attic.",
            "The theatre plays a comedy every {day} until the end of {month}.",
            "School groups get free entry on weekday mornings.",
        ],
        "fr": [
            "L'exposition de {place} a accueilli {n} visiteurs le premier mois.",
            "La conservatrice {person} a trouvé au grenier des lettres datant de {year}.",
            "Le théâtre joue une comédie chaque {day_fr} jusqu'à la fin de {month_fr}.",
            "Les groupes scolaires entrent gratuitement en semaine le matin.",
        ],
    },
]
MONTHS = ["January", "March", "May", "June", "September", "October", "November"]
MONTHS_FR = ["janvier", "mars", "mai", "juin", "septembre", "octobre", "novembre"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Saturday"]
DAYS_FR = ["lundi", "mardi", "mercredi", "jeudi", "samedi"]


@dataclass
class Corpus:
    texts: list[str]
    questions: list[str] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # index of each question's passage
    kinds: list[str] = field(default_factory=list)  # "same language" or "cross-language"


def _slots(rng: random.Random, domain: dict[str, Any]) -> dict[str, Any]:
    org, org_fr = rng.choice(domain["orgs"])
    month = rng.randrange(len(MONTHS))
    day = rng.randrange(len(DAYS))
    return {
        "org": org,
        "org_cap": org[0].upper() + org[1:],
        "org_fr": org_fr[0].upper() + org_fr[1:],
        "place": rng.choice(PLACES),
        "person": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "year": rng.randrange(1950, 2026),
        "n": rng.randrange(12, 900),
        "month": MONTHS[month],
        "month_fr": MONTHS_FR[month],
        "day": DAYS[day],
        "day_fr": DAYS_FR[day],
    }


def _fact(rng: random.Random, domain: dict[str, Any], french: bool) -> tuple[str, str, str]:
    """A fact sentence, and a question about it in each language (in other words)."""
    s = _slots(rng, domain)
    noun, noun_fr, verb, verb_fr, ask, ask_fr = rng.choice(domain["things"])
    org, org_fr = rng.choice(domain["orgs"])
    who, place = s["person"], s["place"]
    if french:
        fact = (
            f"En {s['month_fr']} {s['year']}, {org_fr} de {place} {verb_fr} "
            f"{s['n']} {noun_fr} avec l'aide de {who}."
        )
    else:
        fact = (
            f"In {s['month']} {s['year']}, {org} of {place} {verb} {s['n']} {noun} "
            f"with the help of {who}."
        )
    q_en = f"How many {noun} did {org} in {place} {ask} with {who}?"
    q_fr = f"Combien de {noun_fr} {org_fr} à {place} a-t-il {ask_fr} avec {who} ?"
    return fact, q_en, q_fr


def _passage(rng: random.Random, domain: dict[str, Any], french: bool, fact: str) -> str:
    s = _slots(rng, domain)
    templates = domain["fr" if french else "en"]
    sentences = [t.format(**s) for t in rng.sample(templates, rng.randrange(2, 5))]
    sentences.insert(rng.randrange(len(sentences) + 1), fact)
    return " ".join(sentences)


def build_corpus(size: int, questions: int, facts_within: int = 0, seed: int = 1) -> Corpus:
    """`size` passages; the fact passages are among the first `facts_within` (default: all)."""
    rng = random.Random(seed)
    corpus = Corpus([])
    facts = set(rng.sample(range(facts_within or size), questions))
    for i in range(size):
        french = rng.random() < 0.5
        domain = rng.choice(DOMAINS)
        # Every passage tells of something done; the fact passages' facts are asked about.
        fact, q_en, q_fr = _fact(rng, domain, french)
        corpus.texts.append(_passage(rng, domain, french, fact))
        if i in facts:
            cross = rng.random() < 0.2
            corpus.questions.append(q_fr if french != cross else q_en)
            corpus.answers.append(i)
            corpus.kinds.append("cross-language" if cross else "same language")
    return corpus


def mixed(
    corpus: Corpus, vectors: np.ndarray, extra: int, seed: int = 2
) -> tuple[list[str], np.ndarray]:
    """`extra` passages, each two passages that are not fact passages, sentences interleaved;
    the vector is the normalised sum of theirs."""
    rng = np.random.default_rng(seed)
    others = np.setdiff1d(np.arange(len(corpus.texts)), np.array(corpus.answers))
    pairs = rng.choice(others, size=(extra, 2))
    texts = []
    for a, b in pairs:
        sa, sb = corpus.texts[a].split(". "), corpus.texts[b].split(". ")
        half = [x for pair in zip(sa[::2], sb[1::2], strict=False) for x in pair]
        texts.append(". ".join(half) if half else corpus.texts[a])
    out = vectors[pairs[:, 0]] + vectors[pairs[:, 1]]
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return texts, out.astype(np.float32)


# -- embedding --------------------------------------------------------------------------------


def embed_cached(
    encoder: SentenceEncoder, texts: list[str], cache: Path, what: str
) -> tuple[np.ndarray, float | None]:
    """The texts' vectors, from the cache when the same texts were embedded before;
    with the embedding rate (texts/s) when they were embedded now."""
    key = hashlib.sha256("\x00".join(texts).encode()).hexdigest()[:24]
    path = cache / f"{what}-{len(texts)}-{key}.npy"
    if path.exists():
        return np.load(path), None
    started = time.perf_counter()
    parts = []
    for i in range(0, len(texts), 256):
        vectors, _ = encoder.encode(texts[i : i + 256])
        parts.append(vectors)
    rate = len(texts) / (time.perf_counter() - started)
    vectors = np.concatenate(parts)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors, rate


# -- measuring --------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def measure(
    index: KnowledgeIndex, kb: str, corpus: Corpus, queries: np.ndarray, ids: list[str]
) -> dict[str, Any]:
    """Per mode: search latency p50/p95 (ms) and recall@5, overall and by kind of question."""
    out: dict[str, Any] = {}
    for mode in MODES:
        for i in range(5):  # warm the caches
            index.search([kb], queries[i], corpus.questions[i], k=K, mode=mode)
        times, hits = [], []
        for question, vector, answer in zip(corpus.questions, queries, corpus.answers, strict=True):
            started = time.perf_counter()
            found = index.search([kb], vector, question, k=K, mode=mode)
            times.append((time.perf_counter() - started) * 1000)
            hits.append(ids[answer] in [h.chunk_id for h in found])
        by_kind = {
            kind: statistics.fmean(h for h, k in zip(hits, corpus.kinds, strict=True) if k == kind)
            for kind in sorted(set(corpus.kinds))
        }
        out[mode] = {
            "p50_ms": round(percentile(times, 50), 2),
            "p95_ms": round(percentile(times, 95), 2),
            "recall_at_5": round(statistics.fmean(hits), 3),
            "recall_by_kind": {k: round(v, 3) for k, v in by_kind.items()},
        }
    return out


def build_index(
    url: str, kb: str, ids: list[str], texts: list[str], vectors: np.ndarray
) -> tuple[KnowledgeIndex, float, float]:
    """The index, how many chunks/s it stored, and the seconds its first search would wait
    without `warm` (reading a big base's vectors into memory)."""
    database = Database(url)
    database.upgrade()
    index = KnowledgeIndex(database)
    index.remove(kb)
    started = time.perf_counter()
    for i in range(0, len(ids), 2000):
        batch = zip(ids[i : i + 2000], texts[i : i + 2000], vectors[i : i + 2000], strict=True)
        index.add(kb, batch)
    rate = len(ids) / (time.perf_counter() - started)
    started = time.perf_counter()
    index.warm([kb])  # as the knowledge-base layer does once a base is ingested
    return index, rate, time.perf_counter() - started


def ingestion(encoder: SentenceEncoder) -> dict[str, Any]:
    """Pages per second end to end, as the knowledge-base layer reads a document: parse (pypdf;
    rapidocr for scans), cut into passages, embed them, index them, on generated documents: a
    40-page text PDF in French and English, and a 3-page scanned PDF."""
    from PIL import Image, ImageDraw, ImageFont
    from reportlab.lib.pagesizes import A4
    from reportlab.pdfgen.canvas import Canvas

    from iaforall.knowledge.chunk import chunk_document
    from iaforall.knowledge.ocr_pages import RapidOcrLines
    from iaforall.knowledge.parse import parse_document

    rng = random.Random(7)
    words = [w for t in TEMPLATES_SAMPLE for w in t.split()]
    with tempfile.TemporaryDirectory(prefix="iaforall-ingest-") as tmp:
        text_pdf = Path(tmp) / "manual.pdf"
        canvas = Canvas(str(text_pdf), pagesize=A4)
        for _ in range(40):
            for line in range(45):  # a full page: ~45 lines of ~90 characters
                canvas.drawString(40, 800 - 17 * line, " ".join(rng.choices(words, k=14))[:95])
            canvas.showPage()
        canvas.save()
        scan = Path(tmp) / "scan.pdf"
        font = ImageFont.truetype("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", 28)
        pages = []
        for _ in range(3):
            page = Image.new("RGB", (1240, 1754), "white")  # A4 at 150 dpi
            draw = ImageDraw.Draw(page)
            for line in range(30):
                draw.text(
                    (90, 90 + 52 * line), " ".join(rng.choices(words, k=8)), font=font, fill=0
                )
            pages.append(page)
        pages[0].save(scan, "PDF", resolution=150, save_all=True, append_images=pages[1:])
        database = Database(f"sqlite:///{Path(tmp) / 'ingest.db'}")
        database.upgrade()
        index = KnowledgeIndex(database)
        figures: dict[str, Any] = {}
        ocr = RapidOcrLines()
        ocr(pages[0].resize((200, 100)))  # the OCR engine loaded before timing
        for name, path in [("text_pdf", text_pdf), ("scanned_pdf", scan)]:
            started = time.perf_counter()
            document = parse_document(path, path.name, read_image=ocr)
            parsed = time.perf_counter()
            chunks = chunk_document(document)
            vectors, _ = encoder.encode([c.embedding_text for c in chunks])
            embedded = time.perf_counter()
            index.add(
                name,
                [
                    (f"{name}-{c.index}", c.embedding_text, v)
                    for c, v in zip(chunks, vectors, strict=True)
                ],
            )
            done = time.perf_counter()
            figures[name] = {
                "pages": document.pages,
                "passages": len(chunks),
                "parse_s": round(parsed - started, 2),
                "embed_s": round(embedded - parsed, 2),
                "index_s": round(done - embedded, 3),
                "pages_per_s": round(document.pages / (done - started), 2),
            }
        index.close()
        database.close()
    text, scanned = figures["text_pdf"], figures["scanned_pdf"]
    figures["note"] = (
        f"text PDF {text['pages_per_s']} pages/s ({text['pages']} pages, {text['passages']} "
        f"passages: parse {text['parse_s']} s, embed {text['embed_s']} s, index "
        f"{text['index_s']} s); scanned PDF {scanned['pages_per_s']} pages/s (OCR)"
    )
    return figures


TEMPLATES_SAMPLE = [
    "The harbour committee met on Tuesday to plan the summer festival and the new lighthouse",
    "Le conseil municipal a voté le budget de la bibliothèque et des écoles pour l'année",
    "Farmers reported a good harvest of apples and pears despite the dry spring weather",
    "Les bénévoles de l'association ont réparé les vélos et nettoyé les jardins partagés",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="the encoder's (as served)")
    parser.add_argument("--database-url", default="", help="default: SQLite in a temporary dir")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "iaforall-bench",
        help="where embedded vectors are kept between runs",
    )
    parser.add_argument(
        "--mix",
        action="store_true",
        help="embed only the smallest size, and make the others' vectors by mixing (quick)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    sizes = sorted(args.sizes)
    base = sizes[0] if args.mix else sizes[-1]

    encoder = SentenceEncoder(args.threads)
    started = time.perf_counter()
    encoder.load()
    load_s = time.perf_counter() - started
    corpus = build_corpus(base, args.questions, facts_within=sizes[0])
    vectors, embed_rate = embed_cached(encoder, corpus.texts, args.cache, "passages")
    queries, _ = embed_cached(encoder, corpus.questions, args.cache, "questions")
    # One question's vector, as a search embeds it.
    one_question: list[float] = []
    for question in corpus.questions[:100]:
        started = time.perf_counter()
        encoder.encode([question])
        one_question.append((time.perf_counter() - started) * 1000)

    report: dict[str, Any] = {
        "machine": {"cpus": os.cpu_count(), "load_average": os.getloadavg()},
        "encoder": {
            "load_s": round(load_s, 2),
            "passages_per_s": round(embed_rate, 1) if embed_rate else "cached",
            "question_p50_ms": round(percentile(one_question, 50), 2),
            "question_p95_ms": round(percentile(one_question, 95), 2),
        },
        "corpus": {
            "passages": base,
            "mean_chars": round(statistics.fmean(len(t) for t in corpus.texts)),
            "questions": len(corpus.questions),
            "cross_language_questions": corpus.kinds.count("cross-language"),
        },
        "ingestion": ingestion(encoder),
        "sizes": {},
    }
    with tempfile.TemporaryDirectory(prefix="iaforall-bench-") as tmp:
        for size in sizes:
            texts, size_vectors = corpus.texts[:size], vectors[:size]
            if size > base:
                extra_texts, extra_vectors = mixed(corpus, vectors, size - base)
                texts += extra_texts
                size_vectors = np.concatenate([vectors, extra_vectors])
                sample = extra_texts[:200]
                true_vectors, _ = embed_cached(encoder, sample, args.cache, "mixed-sample")
                fidelity = float(np.mean(np.sum(true_vectors * extra_vectors[:200], axis=1)))
            ids = [f"chunk-{i}" for i in range(size)]
            url = args.database_url or f"sqlite:///{Path(tmp) / f'bench-{size}.db'}"
            index, add_rate, warm_s = build_index(url, f"bench-{size}", ids, texts, size_vectors)
            figures = measure(index, f"bench-{size}", corpus, queries, ids)
            figures["index_chunks_per_s"] = round(add_rate)
            figures["warm_s"] = round(warm_s, 2)
            if size > base:
                figures["mixed_vectors_cosine_to_true"] = round(fidelity, 3)
            report["sizes"][str(size)] = figures
            index.remove(f"bench-{size}")
            index.close()
            index.database.close()
    report["peak_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)

    if args.json:
        print(json.dumps(report, indent=2, ensure_ascii=False))
        return 0
    enc = report["encoder"]
    print(
        f"encoder: loads in {enc['load_s']} s; passages/s {enc['passages_per_s']}; one question "
        f"p50 {enc['question_p50_ms']} ms, p95 {enc['question_p95_ms']} ms"
    )
    c = report["corpus"]
    print(
        f"corpus: {c['passages']} real passages (~{c['mean_chars']} chars), {c['questions']} "
        f"questions ({c['cross_language_questions']} in the other language)"
    )
    print(f"ingestion: {report['ingestion']['note']}")
    print(f"{'chunks':>8} {'mode':>8} {'p50 ms':>8} {'p95 ms':>8} {'recall@5':>9}  by kind")
    for size, figures in report["sizes"].items():
        for mode in MODES:
            m = figures[mode]
            kinds = ", ".join(f"{k} {v}" for k, v in m["recall_by_kind"].items())
            print(
                f"{size:>8} {mode:>8} {m['p50_ms']:>8} {m['p95_ms']:>8} "
                f"{m['recall_at_5']:>9}  {kinds}"
            )
        extra = figures.get("mixed_vectors_cosine_to_true")
        note = f"; mixed vectors vs true: cosine {extra}" if extra is not None else ""
        print(
            f"{size:>8} indexed at {figures['index_chunks_per_s']} chunks/s, read into memory "
            f"in {figures['warm_s']} s{note}"
        )
    print(f"load average {report['machine']['load_average']}; peak RSS {report['peak_rss_mb']} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
