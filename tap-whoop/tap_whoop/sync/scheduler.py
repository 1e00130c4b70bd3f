"""One tap run over every enrolled athlete: fresh data first, then history, within the app's budget.

1. Pending tokens are adopted (`AthleteRegistry.adopt_pending`): the upgrade from a single-athlete store,
   a new `refresh_token` setting, an interrupted import.
2. Incremental: for every athlete (least recently synced first), each collection's incremental window (on
   first contact only its head), then the athlete's other per-run streams (after the collections, in
   STREAM_TYPES order). The athlete then counts as synced.
3. Sleep signals of the sleeps step 2 read (new or edited), for every athlete: fresh data too, so they count
   with the incremental calls the daily budget reserves.
4. Snapshots (profile, body measurement) that are due, if the daily budget allows.
5. History: backfill turns of `BACKFILL_PAGES_PER_TURN` pages per stream, round-robin over the athletes,
   while the daily budget leaves everyone's next incremental runs covered; otherwise they pause first. An
   athlete's turn first fetches the signals of sleeps their history turns read (`SIGNALS_PER_TURN` at most),
   then reads further back.
6. App streams (the athlete registry), the run's line in the budget ledger, a summary.

One athlete's failure is theirs alone: it is logged with their user_id and the fix, their status is set
when it is about their authorization, the partition being read keeps its old bookmark, and the run goes on.
The run fails (non-zero exit) only when no athlete could be synced; a spent daily quota is a clean stop.
"""

from __future__ import annotations

import dataclasses
import logging
import typing as t

from tap_whoop.athletes import registry as registry_statuses
from tap_whoop.client.pacing import RateLimitBudgetExhausted
from tap_whoop.errors import CONSENT_AGAIN, Failure, TokenStoreError, WhoopAPIError, WhoopUserError
from tap_whoop.sdk import reset_state_progress_markers
from tap_whoop.streams.endpoints import STREAM_TYPES, SleepSignalsStream
from tap_whoop.streams.incremental import INCREMENTAL, Turn, WhoopCollectionStream
from tap_whoop.streams.snapshots import WhoopSnapshotStream
from tap_whoop.sync.budget import DailyBudget
from tap_whoop.sync.state_writer import PacedStateWriter
from tap_whoop.timestamps import format_datetime

if t.TYPE_CHECKING:
    from tap_whoop.athletes.registry import Athlete
    from tap_whoop.streams.base import WhoopRun, WhoopStream

    class SyncedTap(WhoopRun, t.Protocol):
        """What a run needs of the tap beyond what its streams do (`tap_whoop.tap.TapWhoop` is one)."""

        @property
        def config(self) -> t.Mapping[str, t.Any]: ...

        @property
        def logger(self) -> logging.Logger: ...

        @property
        def message_writer(self) -> t.Any: ...

        @property
        def state(self) -> t.Any: ...

        def use_state_writer(self, writer: PacedStateWriter) -> None: ...


BACKFILL_PAGES_PER_TURN = 5
# A history turn's sleep signals: about a page of sleeps, one call each.
SIGNALS_PER_TURN = 25
CONSECUTIVE_TRANSIENT_LIMIT = 3  # athletes in a row failing for WHOOP's reasons: WHOOP is down, stop
FIXES = {
    registry_statuses.REVOKED: CONSENT_AGAIN,
    registry_statuses.NEEDS_REAUTHORIZATION: CONSENT_AGAIN,
    registry_statuses.DEACTIVATED: "their WHOOP membership must be active again; the tap retries every run",
    registry_statuses.REMOVED: "`tap-whoop auth` or an invite link enrolls them again",
}
ISOLATED_ERRORS = (WhoopAPIError,)


class RunFailed(WhoopUserError):
    """No athlete could be synced; the message says why and what to do."""


class WhoopUnavailable(Exception):
    """Several athletes in a row failed for reasons on WHOOP's side: the run stops instead of trying all."""


@dataclasses.dataclass
class AthleteRun:
    """One athlete's part of the run."""

    athlete: Athlete
    calls: int = 0
    synced: bool = False
    failure: str | None = None

    @property
    def user_id(self) -> int:
        return self.athlete.user_id

    @property
    def context(self) -> dict[str, int]:
        return {"user_id": self.user_id}


class _AthleteFailed(Exception):
    pass


class Scheduler:
    """Runs one sync of `tap` over its athletes (see the module docstring for the order)."""

    def __init__(self, tap: SyncedTap) -> None:
        self.tap = tap
        self.registry = tap.registry
        self.pacer = tap.pacer
        self.logger = tap.logger
        # In STREAM_TYPES order (the SDK keeps them by name): deleted_records after the collections, and
        # sleeps before recoveries (a recovery deleted with its sleep, or named by it, needs the sleep first).
        order = {vars(stream_type)["name"]: index for index, stream_type in enumerate(STREAM_TYPES)}
        streams = sorted(
            (
                t.cast("WhoopStream", s)
                for s in tap.streams.values()
                if s.selected or s.has_selected_descendents
            ),
            key=lambda s: order.get(s.name, len(order)),
        )
        self.snapshots = [s for s in streams if isinstance(s, WhoopSnapshotStream)]
        self.collections = [s for s in streams if isinstance(s, WhoopCollectionStream)]
        per_athlete = [s for s in streams if getattr(s, "per_athlete", True)]
        signals = [s for s in streams if isinstance(s, SleepSignalsStream) and s.wanted]
        self.signals = signals[0] if signals else None
        self.per_run = [
            s
            for s in per_athlete
            if s not in self.snapshots + self.collections and not isinstance(s, SleepSignalsStream)
        ]
        self.app_streams = [s for s in streams if s not in per_athlete]
        self.budget = DailyBudget(t.cast("dict[str, t.Any]", tap.state), self.pacer)
        self.runs: list[AthleteRun] = []
        self._transient_in_a_row = 0
        self.state_out = PacedStateWriter(tap.message_writer)
        tap.use_state_writer(self.state_out)
        self.stopped: str | None = None
        self.budget_spent = False

    # -- the run
    # ----------------------------------------------------------------------------------------

    def run(self) -> None:
        try:
            self._run()
        except (WhoopAPIError, TokenStoreError) as exc:
            # Only app-wide failures get here (the app's credentials, the token store): one line, non-zero.
            raise RunFailed(" ".join(str(exc).split())) from None

    def _run(self) -> None:
        self.write_state(force=True)
        calls_before = self.pacer.requests
        try:
            self.registry.adopt_pending()
            self.runs = [AthleteRun(a) for a in self._athletes()]
            self._incremental()
            self._fresh_signals()
            self.budget.incremental_per_run = self.pacer.requests - calls_before
            self._snapshots()
            self._history()
        except RateLimitBudgetExhausted as exc:
            self.budget_spent = True
            self.stopped = (
                "the WHOOP app's daily request budget is spent. State is saved; run again after "
                f"{format_datetime(exc.resume_at)}"
            )
            self.logger.warning("Stopped cleanly: %s.", self.stopped)
        except WhoopUnavailable as exc:
            self.stopped = str(exc)
            self.logger.error("Stopped: %s", exc)
        finally:
            self._sync_app_streams()
            self.budget.save()
            self.write_state(force=True)
        self._summary()

    def _athletes(self) -> list[Athlete]:
        known = self.registry.athletes()
        wanted = {int(u) for u in self.tap.config.get("athletes") or []}
        if wanted:
            unknown = sorted(wanted - {a.user_id for a in known})
            if unknown:
                self.logger.warning(
                    "The athletes setting names user_ids this app's token store does not know: %s "
                    "(see `tap-whoop athletes list`).",
                    ", ".join(map(str, unknown)),
                )
            known = [a for a in known if a.user_id in wanted]
        syncable = []
        for athlete in known:
            if athlete.status in registry_statuses.SYNCABLE:
                syncable.append(athlete)
            else:
                self.logger.warning(
                    "Athlete %s: not synced (status %s: %s); %s.",
                    athlete.user_id,
                    athlete.status,
                    athlete.status_reason or "-",
                    FIXES.get(athlete.status, "see `tap-whoop athletes list`"),
                )
        if not syncable:
            location = self.registry.store.location
            which = " among the athletes setting" if wanted else ""
            if self.registry.adoption_failures:
                # Each failure names its own cause and fix (try again later, consent again...).
                raise RunFailed("No athlete to sync: " + " ".join(self.registry.adoption_failures))
            msg = (
                f"No athlete to sync: the token store {location} has no enrolled athlete{which} for this "
                "WHOOP app whose authorization works. Run `tap-whoop auth` (or send a "
                "`tap-whoop athletes invite` link); `tap-whoop athletes list` shows who is there."
            )
            raise RunFailed(msg)
        # Least recently synced first: when the budget runs short, nobody is always last.
        return sorted(syncable, key=lambda a: (a.last_synced_at or 0.0, a.user_id))

    def _incremental(self) -> None:
        total = len(self.runs)
        for index, run in enumerate(self.runs, start=1):
            calls = self.pacer.requests
            try:
                for collection in self.collections:
                    self._turn(run, collection, INCREMENTAL)
                for stream in self.per_run:
                    self._turn(run, stream, None)
            except _AthleteFailed:
                continue
            finally:
                run.calls += self.pacer.requests - calls
            run.synced = True
            self._transient_in_a_row = 0
            self.registry.mark_synced(run.user_id)
            pending = sum(s.backfill_pending(run.context) for s in self.collections)
            self.logger.info(
                "Athlete %s (%d/%d): fresh data synced in %d calls%s.",
                run.user_id,
                index,
                total,
                run.calls,
                f"; history of {pending} streams still to read" if pending else "",
            )
            self.write_state()

    def _fresh_signals(self) -> None:
        if self.signals is None:
            return
        for run in [r for r in self.runs if r.synced and not r.failure]:
            if not self.signals.pending(run.context, history=False):
                continue
            calls = self.pacer.requests
            try:
                self._signals_turn(run, history=False, max_calls=None)
            except _AthleteFailed:
                continue
            finally:
                run.calls += self.pacer.requests - calls
        self.write_state()

    def _signals_turn(self, run: AthleteRun, *, history: bool, max_calls: int | None) -> None:
        stream = t.cast("SleepSignalsStream", self.signals)
        stream.history, stream.max_calls = history, max_calls
        try:
            self._turn(run, stream, None)
        finally:
            stream.history, stream.max_calls = False, None

    def _snapshots(self) -> None:
        for run in [r for r in self.runs if r.synced]:
            for snapshot in self.snapshots:
                if run.failure or not snapshot.is_due(run.context):
                    continue
                cached = snapshot.name == "profile" and self.tap.fresh_profile(run.user_id) is not None
                if not cached and not self.budget.allows(1):
                    self.logger.info(
                        "Snapshots (profile, body measurement) paused for this run: %s.",
                        self.budget.describe(),
                    )
                    return
                calls = self.pacer.requests
                try:
                    self._turn(run, snapshot, None)
                except _AthleteFailed:
                    continue
                finally:
                    self.budget.spend(self.pacer.requests - calls)
        self.write_state()

    def _history(self) -> None:
        queue = [r for r in self.runs if r.synced and not r.failure]
        turn = Turn("backfill", BACKFILL_PAGES_PER_TURN)
        while queue:
            for run in list(queue):
                pending = [s for s in self.collections if s.backfill_pending(run.context)]
                signals = self.signals.pending(run.context, history=True) if self.signals else 0
                if (not pending and not signals) or run.failure:
                    queue.remove(run)
                    if not run.failure:
                        self.logger.info("Athlete %s: history complete.", run.user_id)
                    continue
                cost = min(signals, SIGNALS_PER_TURN) if signals else len(pending) * BACKFILL_PAGES_PER_TURN
                if not self.budget.allows(cost):
                    waiting = ", ".join(str(r.user_id) for r in queue)
                    self.logger.warning(
                        "History paused for athletes %s: %s. It resumes when the budget allows.",
                        waiting,
                        self.budget.describe(),
                    )
                    return
                calls = self.pacer.requests
                try:
                    if signals:
                        self._signals_turn(run, history=True, max_calls=SIGNALS_PER_TURN)
                    else:
                        for stream in pending:
                            self._turn(run, stream, turn)
                except _AthleteFailed:
                    queue.remove(run)
                finally:
                    self.budget.spend(self.pacer.requests - calls)
                    run.calls += self.pacer.requests - calls
                if signals:
                    left = self.signals.pending(run.context, history=True) if self.signals else 0
                    self.logger.info(
                        "Athlete %s: sleep signals of the history fetched, %d sleeps still to fetch.",
                        run.user_id,
                        left,
                    )
                    self.write_state()
                    continue
                reached = [
                    f"{s.name} {s.get_context_state(run.context).get('backfill_before', 'done')[:10]}"
                    for s in pending
                ]
                self.logger.info("Athlete %s: history read back to %s.", run.user_id, ", ".join(reached))
                self.write_state()

    def _sync_app_streams(self) -> None:
        for stream in self.app_streams:
            try:
                stream.sync(None)
            except ISOLATED_ERRORS as exc:
                self.logger.error("Stream '%s' failed: %s", stream.name, exc)

    # -- one unit of work
    # ----------------------------------------------------------------------------------------

    def _turn(self, run: AthleteRun, stream: WhoopStream, turn: Turn | None) -> None:
        context = run.context
        if turn is not None:
            stream.turn = turn  # type: ignore[attr-defined]
        try:
            try:
                stream.sync(context)
            except RateLimitBudgetExhausted:
                self._discard_progress(stream, context)
                raise
            except ISOLATED_ERRORS as exc:
                self._discard_progress(stream, context)
                self._failed(run, stream, exc)
                raise _AthleteFailed from None
            finish = getattr(stream, "finish_turn", None)
            if finish is not None:
                finish(context)
        finally:
            if turn is not None:
                stream.turn = INCREMENTAL  # type: ignore[attr-defined]

    @staticmethod
    def _discard_progress(stream: WhoopStream, context: dict[str, t.Any]) -> None:
        """Forget what an interrupted read claimed, so nothing promotes it: the partition stays as it was."""
        state = stream.get_context_state(context)
        reset_state_progress_markers(state)
        state.pop("replication_key_signpost", None)
        state.pop("starting_replication_value", None)

    def _failed(self, run: AthleteRun, stream: WhoopStream, exc: BaseException) -> None:
        kind = exc.kind if isinstance(exc, WhoopAPIError) else Failure.TRANSIENT
        if kind is Failure.APP:
            raise exc
        message = " ".join(str(exc).split())
        run.failure = f"{kind}: {message}"
        if kind.athlete_level:
            self.registry.set_status(run.user_id, kind.value, message)
            self.logger.error(
                "Athlete %s: skipped (%s) while reading %s: %s Fix: %s.",
                run.user_id,
                kind,
                stream.name,
                message,
                FIXES.get(kind, "see `tap-whoop athletes list`"),
            )
            self._transient_in_a_row = 0
            return
        self.logger.error(
            "Athlete %s: %s failed this run (%s); their bookmarks stay where they were and the next run "
            "tries again.",
            run.user_id,
            stream.name,
            message,
        )
        self._transient_in_a_row += 1
        if self._transient_in_a_row >= CONSECUTIVE_TRANSIENT_LIMIT:
            msg = (
                f"{self._transient_in_a_row} athletes in a row failed on WHOOP's side (last: {message}); "
                "WHOOP seems unavailable, so the other athletes wait for the next run"
            )
            raise WhoopUnavailable(msg)

    # -- output
    # ----------------------------------------------------------------------------------------

    def write_state(self, *, force: bool = False) -> None:
        if force:
            self.state_out.flush(self.tap.state)
        else:
            self.state_out.write_state(self.tap.state)

    def _summary(self) -> None:
        synced = [r for r in self.runs if r.synced]
        failed = [r for r in self.runs if r.failure and not r.synced]
        pending = [r for r in synced if any(s.backfill_pending(r.context) for s in self.collections)]
        self.logger.info(
            "Run summary: %d of %d athletes synced, %d failed, %d with history still to read; %d API calls "
            "(%d for fresh data, %d for history and snapshots).",
            len(synced),
            len(self.runs),
            len(failed),
            len(pending),
            self.budget.calls,
            self.budget.incremental_per_run,
            self.budget.discretionary,
        )
        for run in failed:
            self.logger.error("Athlete %s not synced: %s", run.user_id, run.failure)
        if self.runs and not synced and not self.budget_spent:
            reasons = "; ".join(f"athlete {r.user_id}: {r.failure}" for r in failed) or self.stopped or "-"
            raise RunFailed(f"No athlete could be synced. {reasons}")
