// The app shell kept on this device: the pages, styles, scripts, catalogues and icons, so the
// app opens without the server and says it cannot reach it. Served at /sw.js by the server,
// which writes in the version (a hash of the shell's files) and the shell's URLs. Nothing else
// is ever kept: answers from /v1, /api, /web/api, /admin/api and the conversations always go
// to the server (this worker does not even see them through: it lets them pass).

const VERSION = "__VERSION__";
const SHELL = ["__SHELL__"];
const PREFIX = "iaforall-shell-";
const CACHE = `${PREFIX}${VERSION}`;
const PAGES = new Set(["/", "/admin", "/rules"]);
const KEPT = new Set(SHELL);

self.addEventListener("install", (event) => {
  event.waitUntil(
    (async () => {
      const cache = await caches.open(CACHE);
      // "/" answers scripts with a line of text: ask for the page, as a browser does.
      const asked = SHELL.map(
        (url) => new Request(url, { headers: { Accept: "text/html,*/*" }, cache: "no-cache" }),
      );
      await cache.addAll(asked);
      await self.skipWaiting(); // a new release takes over at once
    })(),
  );
});

self.addEventListener("activate", (event) => {
  event.waitUntil(
    (async () => {
      for (const name of await caches.keys()) {
        if (name.startsWith(PREFIX) && name !== CACHE) await caches.delete(name);
      }
      await self.clients.claim();
    })(),
  );
});

self.addEventListener("fetch", (event) => {
  const { request } = event;
  if (request.method !== "GET") return;
  const url = new URL(request.url);
  if (url.origin !== self.location.origin) return;
  const page = request.mode === "navigate" && PAGES.has(url.pathname);
  if (!page && !KEPT.has(url.pathname)) return; // not the shell: straight to the server
  event.respondWith(networkElseKept(request, page ? url.pathname : url.pathname + url.search));
});

/** The server's answer when it gives one (an upgrade is seen at once); else the kept copy. */
async function networkElseKept(request, key) {
  try {
    return await fetch(request);
  } catch (err) {
    const kept = await caches.match(key, { cacheName: CACHE });
    if (kept) return kept;
    throw err;
  }
}
