/**
 * `refresh` (SPEC 3): each item that has it is fetched at start, then at its interval, through
 * the resolver, which starts none while one is in flight or a backoff window is open.
 */
import type { Clock, Resolver, Timer } from "./resolver";

/** Starts refreshing the resolver's items as they are now; the function it returns stops it. */
export function startRefresh(resolver: Resolver, clock: Clock): () => void {
  const timers = new Set<Timer>();
  let stopped = false;
  for (const path of resolver.paths()) {
    const interval = resolver.item(path)?.policy.refresh ?? null;
    if (interval === null) continue;
    const tick = () => {
      if (stopped) return;
      resolver.refresh(path);
      const timer = clock.timer(interval);
      timers.add(timer);
      void timer.done.then(() => {
        timers.delete(timer);
        tick();
      });
    };
    tick();
  }
  return () => {
    stopped = true;
    for (const timer of timers) timer.cancel();
    timers.clear();
  };
}
