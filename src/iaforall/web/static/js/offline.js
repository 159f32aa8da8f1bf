// The app shell kept on this device by the service worker (/sw.js): the app then opens without
// the server, and says it cannot reach it. Browsers allow it on https and on localhost; on
// plain http elsewhere the app stays a web page, as before.

export async function keepShell() {
  if (!window.isSecureContext || !("serviceWorker" in navigator)) return;
  try {
    await navigator.serviceWorker.register("/sw.js", { scope: "/" });
  } catch {
    // Refused (storage disabled, workers blocked…): the app works as a plain page.
  }
}
