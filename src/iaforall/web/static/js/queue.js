// Where a waiting request stands, in words: "You are 3rd in line (about 12 s)". Ordinals
// follow the language's own rules (1st 2nd 3rd 4th 11th 21st; 1er 2e 3e), from its catalogue.

import { currentLanguage, formatNumber, t } from "./i18n.js";

const ORDINALS = {
  one: (n) => t("ordinal_one", { n }),
  two: (n) => t("ordinal_two", { n }),
  few: (n) => t("ordinal_few", { n }),
  other: (n) => t("ordinal_other", { n }),
};

/** "3rd", "3e": `n` as a position. */
export function ordinal(n) {
  const form = new Intl.PluralRules(currentLanguage(), { type: "ordinal" }).select(n);
  return (ORDINALS[form] || ORDINALS.other)(formatNumber(n));
}

/** A rough duration, never "0 s": seconds under a minute and a half, then minutes. */
export function roughDuration(seconds) {
  const s = Math.max(1, Math.ceil(Number(seconds) || 0));
  if (s < 90) return t("duration_seconds", { n: formatNumber(s) });
  return t("duration_minutes", { n: formatNumber(Math.round(s / 60)) });
}

/** The status line for a `queue` event of the reply stream ({position, wait_s, paused}):
 * `paused`, the answer stopped for someone else's turn and resumes where it was. */
export function queueStatus({ position, wait_s: waitS, paused }) {
  const wait = roughDuration(waitS);
  if (paused) return t("status_queue_paused", { wait });
  if (position === 1) return t("status_queue_next", { wait });
  return t("status_queue_position", { position: ordinal(position), wait });
}
