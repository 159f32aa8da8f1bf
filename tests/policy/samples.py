"""Rules files used by the policy tests (the bilingual one is the example in docs/policy.md)."""

from __future__ import annotations

BILINGUAL = r"""
[[rule]]
id = "no-weapons"
action = "block"
description.en = "Instructions to make weapons or explosives are refused."
description.fr = "Les instructions pour fabriquer des armes ou des explosifs sont refusées."
match.keywords = ["bombe artisanale", "explosif", "pipe bomb"]

[[rule]]
id = "phone-numbers"
action = "warn"
applies_to = ["input", "output"]
description.en = "Phone numbers are personal data: think twice before sharing one."
description.fr = "Un numéro de téléphone est une donnée personnelle : partagez-le avec prudence."
match.regex = '\b0[1-9](?:[ .]?\d{2}){4}\b'

[[rule]]
id = "homework"
action = "log"
description = "Questions about homework are counted, to see how the server is used."
match.keywords = ["devoirs", "homework"]
"""
