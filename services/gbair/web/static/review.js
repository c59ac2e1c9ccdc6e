// The review app's only script: keyboard shortcuts, and a running job's progress.

// A key clicks the element that lists it in data-keys (space-separated), so the pages say in their
// markup which key does what, and the buttons work the same with or without the keyboard.
document.addEventListener("keydown", (event) => {
  if (event.ctrlKey || event.metaKey || event.altKey || event.target.closest("input, select, textarea")) return;
  const target = document.querySelector(`[data-keys~="${CSS.escape(event.key)}"]`);
  if (target) {
    event.preventDefault();
    target.click();
  }
});

// A running job's page follows its WatchJob events (server-sent); it reloads when a round is scored,
// for the new row and plot point, and when the job ends.
const progress = document.querySelector("[data-progress]");
if (progress) {
  const bar = progress.querySelector("progress");
  const text = progress.querySelector(".progress-text");
  const roundsShown = Number(progress.dataset.rounds);
  const source = new EventSource(progress.dataset.progress);
  source.onmessage = (message) => {
    const event = JSON.parse(message.data);
    bar.value = event.fraction;
    text.textContent = `${event.status}: ${event.phase}, round ${event.round}` +
      (event.fraction ? ` (${Math.round(event.fraction * 100)}%)` : "") + (event.message ? ` · ${event.message}` : "");
    if (event.phase === "round" && event.round >= roundsShown) location.reload();
  };
  source.addEventListener("end", () => {
    source.close();
    location.reload();
  });
  source.addEventListener("failure", (message) => {
    source.close();
    text.textContent = `Progress is not available: ${JSON.parse(message.data).message}. Reload the page to try again.`;
  });
}
