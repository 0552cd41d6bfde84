"""The curated mutations of ``make mutants``: each breaks one promise of the README or a
docstring, and names the tests that must then fail.

Keep it current as the code moves: a mutation whose text is no longer found is
reported as stale. A mutation that no test can catch is either given a test or marked
``equivalent`` with the reason.
"""

from __future__ import annotations

from typing import NamedTuple


class Mutation(NamedTuple):
    file: str
    old: str
    new: str
    promise: str
    tests: tuple[str, ...]
    equivalent: str = ""  # why no test can tell the difference, if none can


T_BUDGET = "tests/test_budget.py"
T_DRAIN = "tests/test_drain.py"
T_EXIT = "tests/test_exit.py"
T_RUNTIME = "tests/test_runtime.py"
T_HEALTH = "tests/test_health.py"
T_PROBE = "tests/test_probe.py"
T_INIT = "tests/test_init.py"
T_SUPERVISOR = "tests/test_supervisor.py"
T_LONG = "tests/test_long_lived.py"
T_SERVERS = "tests/test_servers.py"
T_CLI = "tests/test_cli.py"
T_CHILDREN = "tests/test_children.py"
T_WORKERS = "tests/test_workers.py"
T_HOOKS = "tests/test_hooks.py"
T_GUARANTEE = "tests/test_deadline_guarantee.py"

MUTATIONS: tuple[Mutation, ...] = (
    # -- the budget -----------------------------------------------------------------------
    Mutation("graceful/_core/budget.py", "HOOK_DEFAULT = 1.0", "HOOK_DEFAULT = 0.0",
             "a hook without a timeout keeps 1 s of the window", (T_BUDGET,)),
    Mutation("graceful/_core/budget.py", "CANCEL_RESERVE = 0.5", "CANCEL_RESERVE = 0.05",
             "the cancellation keeps 0.5 s", (T_BUDGET,)),
    Mutation("graceful/_core/budget.py", "MIN_DRAIN_SHARE = 0.2", "MIN_DRAIN_SHARE = 0.0",
             "hooks over the window still leave the drain a fifth", (T_BUDGET,)),
    Mutation("graceful/_core/budget.py", "return min(time_left / 2, max(own, time_left - hooks))",
             "return time_left * 0.95",
             "cancelled tasks never take the hooks' reserve (95 % instead)", (T_BUDGET,)),
    Mutation("graceful/_core/sequence.py", "run.drain_end = deadline.clock() + split.drain",
             "run.drain_end = deadline.clock() + deadline.time_left() * 0.95",
             "the drain ends where the split says (95 % instead)",
             (f"{T_LONG}::test_a_request_that_fits_the_window_is_served_and_one_that_does_not_is_cut",)),
    Mutation("graceful/_core/sequence.py", "hooks = [h for h in snapshot() if h.always or run.main_started]",
             "hooks = []", "the drain leaves the hooks what they declared",
             (f"{T_LONG}::test_a_request_that_fits_the_window_is_served_and_one_that_does_not_is_cut",)),
    Mutation("graceful/_core/runtime.py", "    if budget.short():\n", "    if False:\n",
             "hooks that cannot fit the window are named at start-up", (T_BUDGET,)),
    # -- the drain and the cancellation ----------------------------------------------------
    Mutation("graceful/_core/sequence.py", "        run.drain_waker = None\n",
             "        run.drain_waker = None\n        break\n",
             "work protected during the drain is drained too",
             (f"{T_DRAIN}::test_work_protected_during_the_drain_is_drained_too",)),
    Mutation("graceful/_core/sequence.py", "out.undrained = _running_tasks(run) - {main}",
             "out.undrained = set()",
             "tasks cancelled with a main that does not listen are reported",
             (f"{T_DRAIN}::test_work_cancelled_with_a_main_that_does_not_listen_is_reported",)),
    Mutation("graceful/_core/sequence.py", "    for _ in range(3):\n", "    for _ in range(1):\n",
             "tasks started while others unwind are cancelled too",
             (f"{T_DRAIN}::test_tasks_started_while_others_unwind_are_cancelled_too",)),
    Mutation("graceful/_core/sequence.py", "            main.cancel()\n            out.tasks_cancelled += 1\n",
             "            out.tasks_cancelled += 1\n",
             "a main that does not listen is cancelled at once",
             (f"{T_DRAIN}::test_a_main_that_does_not_listen_is_cancelled_at_once",)),
    Mutation("graceful/_core/sequence.py", "            or self.threads_left\n", "",
             "threads left running make the summary's exit code 1", (T_GUARANTEE,)),
    Mutation("graceful/_core/sequence.py", "            or self.tasks_stuck\n", "",
             "a task that refuses to stop makes the exit code 1", (T_GUARANTEE,)),
    Mutation("graceful/_core/sequence.py", "level = log.error if code or out.failed()",
             "level = log.error if out.failed()",
             "the summary's level follows its exit code",
             (f"{T_EXIT}::test_an_exit_code_above_255_is_mapped_and_the_summary_says_so",)),
    Mutation("graceful/_core/sequence.py", "alive = await children.wait_async(deadline.time_left() - KILL_RESERVE)",
             "alive = await children.wait_async(deadline.time_left())",
             "phase 5 sends SIGKILL just before the deadline, not at it",
             (f"{T_CHILDREN}::test_child_ignoring_sigterm_is_killed_within_grace",)),
    Mutation("graceful/_core/sequence.py", "            out.children_terminated = len(children.send(signal.SIGTERM))",
             "            out.children_terminated = 0",
             "phase 2 sends SIGTERM to every descendant", (T_CHILDREN,)),
    # -- the edges: descriptors, exit codes, late signals, buffered data -----------------------
    Mutation("graceful/_core/runtime.py", "            self.free_the_spare_descriptor()  # the stop path may need one (see below)\n",
             "", "out of descriptors, the sequence and its hooks still run",
             (f"{T_EXIT}::test_out_of_descriptors_the_sequence_and_its_hooks_still_run",)),
    Mutation("graceful/_core/runtime.py", "            if run.sequence_done:\n                run.guard.ignore_from_now_on()\n",
             "", "a SIGTERM after the summary keeps the clean exit code",
             (f"{T_EXIT}::test_a_train_of_sigterms_leaves_the_clean_exit_code",)),
    Mutation("graceful/_core/runtime.py", "        self.main_task = self.tasks.exempt = None\n",
             "        self.main_task = None\n",
             "a file the app never closed is flushed at exit",
             (f"{T_EXIT}::test_a_file_the_app_never_closed_is_flushed_at_exit",)),
    Mutation("graceful/_errors.py", "status = int(value) % 256", "status = int(value)",
             "an exit code over 255 is mapped as sys.exit() maps it",
             (f"{T_EXIT}::test_an_exit_code_above_255_is_mapped_and_the_summary_says_so",)),
    Mutation("graceful/_cli.py", "            return execute(\n                config, lambda: make_main(config, spec, app_args), unblock=blocked, cli=True\n            )",
             "            return execute(config, lambda: make_main(config, spec, app_args), unblock=blocked)",
             "the --workers parent keeps its clean exit code under a SIGTERM train",
             (f"{T_WORKERS}::test_a_train_of_sigterms_leaves_the_parents_clean_exit_code",)),
    Mutation("graceful/_core/runtime.py", '''    if "GRACEFUL_NO_START_FILE" in os.environ:''', "    if False:",
             "a worker that cannot load the app is not restarted",
             (f"{T_WORKERS}::test_workers_that_cannot_load_the_app_are_not_restarted",)),
    Mutation("graceful/_pid1/init.py", "        if not pid1:\n            _die_with(init, command is None)\n", "",
             "the app dies with a killed subreaper init",
             (f"{T_INIT}::test_when_the_subreaper_init_is_killed_the_app_goes_with_it",)),
    Mutation("graceful/_pid1/init.py", "if (signum in _STOP or signum in self.config.stop_signals) and self.kill_app_at is None:",
             "if signum in _STOP and self.kill_app_at is None:",
             "as PID 1, a --stop-signal arms the init's deadline too", (), equivalent=(
                 "the init's deadline is a backstop behind the app's own watchdog, which the"
                 " stop signal arms: a well-behaved app exits before the init would act")),
    Mutation("graceful/_core/signals.py", "        self.signals = STOP_SIGNALS + tuple(signal.Signals(s) for s in extra)",
             "        self.signals = STOP_SIGNALS",
             "a --stop-signal starts the same sequence",
             (f"{T_EXIT}::test_a_stop_signal_of_the_users_choice_runs_the_same_sequence",)),
    # -- signals and the deadline -----------------------------------------------------------
    Mutation("graceful/_core/runtime.py", "            if self.sigints >= 2:", "            if self.sigints >= 3:",
             "a second SIGINT exits at once with 130",
             (f"{T_RUNTIME}::test_second_sigint_forces_exit_130",)),
    Mutation("graceful/_core/runtime.py", "        killed = kill_each(descendant_pids(), signal.SIGKILL)",
             "        killed = 0",
             "the forced exit SIGKILLs the children",
             (f"{T_RUNTIME}::test_the_forced_exit_kills_the_children_it_leaves",)),
    Mutation("graceful/_core/runtime.py", "    left = [hook.name for hook in snapshot()]",
             "    left: list[str] = []",
             "the forced exit names the hooks that did not run",
             (f"{T_RUNTIME}::test_a_second_sigint_before_the_hooks_says_they_did_not_run",)),
    Mutation("graceful/_core/runtime.py", "        self.watchdog.arm(self.deadline)\n", "",
             "the watchdog ends a blocked process at the deadline", (T_GUARANTEE,)),
    Mutation("graceful/_core/deadline.py", "KILL_RESERVE = 0.1", "KILL_RESERVE = 0.0",
             "SIGKILL is sent a reserve before the deadline",
             (f"{T_CHILDREN}::test_child_ignoring_sigterm_is_killed_within_grace",)),
    Mutation("graceful/_core/runtime.py", "        keep_logger_enabled()  # before the first line of the stop, which must not be lost\n",
             "", "an app's dictConfig does not swallow the first line of the stop",
             (f"{T_EXIT}::test_dictconfig_does_not_silence_graceful",)),
    # -- hooks ------------------------------------------------------------------------------
    Mutation("graceful/_core/hooks.py", "        hooks = list(reversed(_registry))", "        hooks = list(_registry)",
             "hooks run last registered first", (T_RUNTIME,)),
    Mutation("graceful/_core/hooks.py", "        task.cancel()  # abandoned: not awaited, it may swallow the cancellation\n",
             "", "an async hook that overruns its bound is cancelled",
             (f"{T_RUNTIME}::test_hook_failures_are_named_and_the_rest_still_run",)),
    Mutation("graceful/_core/hooks.py", "        bound = min(share, hook.timeout) if hook.timeout is not None else share",
             "        bound = share", "a hook's own timeout bounds it",
             (f"{T_RUNTIME}::test_hook_failures_are_named_and_the_rest_still_run",)),
    Mutation("graceful/_core/hooks.py", "        if len(required) > 1:", "        if len(required) > 9:",
             "a hook that needs two arguments is refused when registered",
             (f"{T_CLI}::test_a_mistake_in_the_apps_import_shows_the_apps_lines_not_gracefuls",)),
    Mutation("graceful/_core/hooks.py", "    if not ctx.main_started:\n", "    if False:\n",
             "hooks run only for an app whose main started", (T_RUNTIME, T_EXIT)),
    # -- first contact ------------------------------------------------------------------------
    Mutation("graceful/_core/runtime.py", "    if inspect.isasyncgenfunction(target) or inspect.isgeneratorfunction(target):",
             "    if False:", "a generator as main is refused at start", (T_CLI,)),
    Mutation("graceful/_core/runtime.py", "    if required:\n        raise TargetError(", "    if False:\n        raise TargetError(",
             "a main with a required argument is refused at start", (T_CLI,)),
    Mutation("graceful/_core/runtime.py", "    kept = [f for f in shown.stack if theirs(f)]", "    kept = list(shown.stack)",
             "an import error shows the app's frames, not graceful's",
             (f"{T_CLI}::test_a_mistake_in_the_apps_import_shows_the_apps_lines_not_gracefuls",)),
    Mutation("graceful/_cli.py", "            sys.path.append(cwd)", "            sys.path.insert(0, cwd)",
             "under python -P the standard library comes first",
             (f"{T_CLI}::test_under_python_P_the_standard_library_comes_before_the_apps_directory",)),
    Mutation("graceful/_cli.py", "            if given:\n", "            if False:\n",
             "-- COMMAND refuses the app's options", (T_CLI,)),
    # -- readiness and the health server -------------------------------------------------------
    Mutation("graceful/_health/readiness.py", "        if self.stopping:\n            return [\"shutting down\"]\n", "",
             "once a stop has begun readiness stays off whatever is set",
             (f"{T_HEALTH}::test_set_ready_during_a_stop_does_not_make_the_app_ready_again",)),
    Mutation("graceful/_core/runtime.py", "        readiness.stopping = True  # first: the health server answers 503 from here on\n",
             "", "readiness fails at the first instant of a stop", (T_HEALTH,)),
    Mutation("graceful/_health/server.py", "        if len(self._conns) >= MAX_CONNECTIONS:", "        if False:",
             "at most 64 connections: a new one evicts an idle one",
             (f"{T_HEALTH}::test_the_oldest_idle_connection_is_dropped_for_a_new_one_past_64",)),
    Mutation("graceful/_health/server.py", "            if conn.state == READING and reading is None:",
             "            if conn.state == CHECKING and reading is None:",
             "a connection being answered is never evicted",
             (f"{T_HEALTH}::test_a_flood_of_idle_connections_never_drops_a_probe_being_answered",)),
    Mutation("graceful/_health/server.py", "    return answer if verbose else (status, {\"status\": body[\"status\"]})",
             "    return answer", "/readyz shows details only with ?verbose",
             (f"{T_HEALTH}::test_readiness_checks_by_name",)),
    Mutation("graceful/_health/server.py", "                if now >= self._accept_logged_at + ACCEPT_LOG_EVERY:",
             "                if True:", "out of descriptors the health server says so once in 10 s",
             (f"{T_EXIT}::test_out_of_descriptors_the_sequence_and_its_hooks_still_run",)),
    Mutation("graceful/_health/server.py", "        if lag > self.lag.max_lag:", "        if lag > self.lag.max_lag * 100:",
             "/livez fails while the loop is blocked", (T_HEALTH,)),
    # -- the probe ----------------------------------------------------------------------------
    Mutation("graceful/_probe.py", "    if not complete:\n", "    if False:\n",
             "only a whole answer counts",
             (f"{T_PROBE}::test_only_a_whole_answer_within_the_timeout_counts",)),
    Mutation("graceful/_probe.py", "            sock.settimeout(_left(end, timeout))\n            chunk",
             "            sock.settimeout(timeout)\n            chunk",
             "the probe's timeout bounds the whole exchange",
             (f"{T_PROBE}::test_only_a_whole_answer_within_the_timeout_counts",)),
    Mutation("graceful/_probe.py", "    return \"\".join(c if c.isprintable() else repr(c)[1:-1] for c in text)",
             "    return text", "what the server says is shown escaped",
             (f"{T_PROBE}::test_what_the_server_says_is_shown_escaped",)),
    # -- the init -----------------------------------------------------------------------------
    Mutation("graceful/_pid1/init.py", "        return 128 + os.WTERMSIG(status)", "        return 1",
             "a command killed by signal N exits 128+N", (T_INIT,)),
    Mutation("graceful/_pid1/init.py", "            os.kill(self.app, signum)", "            pass",
             "the init forwards signals to the app", (T_INIT,)),
    # -- the supervisor --------------------------------------------------------------------------
    Mutation("graceful/_supervise/backoff.py", "        self._early.clear()", "        pass",
             "a run past min_uptime resets the count of early exits",
             (f"{T_SUPERVISOR}::test_a_run_past_min_uptime_resets_the_count_of_early_exits",)),
    Mutation("graceful/_supervise/backoff.py", "            if len(self._early) > self.max_restarts:",
             "            if len(self._early) > self.max_restarts + 5:",
             "more than max_restarts early exits mark a process failed", (T_SUPERVISOR,)),
    Mutation("graceful/_supervise/supervisor.py", "            if own is None or left < own:", "            if own is None:",
             "a process's own stop_timeout is capped by the deadline",
             (f"{T_SUPERVISOR}::test_a_stop_timeout_longer_than_the_window_is_cut_by_the_deadline",)),
    Mutation("graceful/_supervise/program.py", "        if not self._stopping:  # (a stop waits for the group and kills it itself)",
             "        if False:", "what a process leaves in its group when it ends is stopped",
             (f"{T_SUPERVISOR}::test_what_a_program_leaves_in_its_group_when_it_ends_is_stopped",)),
    Mutation("graceful/_supervise/supervisor.py", "        elif not self._roll_again:", "        elif False:",
             "a SIGHUP during a rolling restart is not lost",
             (f"{T_SUPERVISOR}::test_a_sighup_during_a_rolling_restart_is_not_lost",)),
    # -- the integrations and long-lived connections ------------------------------------------------
    Mutation("graceful/integrations/_common.py", "CLOSE_CODE = 1012", "CLOSE_CODE = 1000",
             "WebSockets are closed with 1012 at the stop",
             (f"{T_LONG}::test_websockets_and_streams_end_cleanly_at_the_stop",)),
    Mutation("graceful/integrations/_common.py", "        tell_stream_libraries()\n        closing = []",
             "        closing = []", "sse-starlette ends its streams under hypercorn too",
             (f"{T_LONG}::test_websockets_and_streams_end_cleanly_at_the_stop",)),
    Mutation("graceful/integrations/uvicorn.py", "            server.handle_exit(signal.SIGTERM, None)",
             "            server.should_exit = True", "uvicorn's own stop API is called (sse-starlette)",
             (f"{T_LONG}::test_websockets_and_streams_end_cleanly_at_the_stop",), equivalent=(
                 "tell_stream_libraries() sets sse-starlette's AppStatus on every server, uvicorn"
                 " included, so its streams end either way")),
    Mutation("graceful/integrations/_common.py", "        self.run.note(BACKGROUND_CUT if complete else CUT, 1)",
             "        self.run.note(CUT, 1)", "background work is counted apart from requests",
             (f"{T_LONG}::test_a_started_response_that_is_cut_gets_no_second_status_line",)),
    Mutation("graceful/integrations/_common.py", "        if started or complete:\n            return",
             "        if complete:\n            return", "a started response gets no second status line",
             (f"{T_LONG}::test_a_started_response_that_is_cut_gets_no_second_status_line",), equivalent=(
                 "uvicorn and hypercorn refuse a second http.response.start themselves (the send"
                 " raises, and the error is swallowed): the early return only saves the attempt")),
    Mutation("graceful/integrations/aiohttp.py", "            if id(request) in started:\n                raise",
             "            if False:\n                raise", "aiohttp never writes a response into a started one",
             (f"{T_LONG}::test_a_started_response_that_is_cut_gets_no_second_status_line",)),
    Mutation("graceful/integrations/aiohttp.py", "            if isinstance(each, web.WebSocketResponse) and not each.closed",
             "            if False", "aiohttp's WebSockets are closed at the stop",
             (f"{T_LONG}::test_websockets_and_streams_end_cleanly_at_the_stop",)),
    Mutation("graceful/integrations/_common.py", "    return max(0.0, left - min(CLEANUP_MAX, left * CLEANUP_SHARE))",
             "    return max(0.0, left * 0.8)", "the servers keep only a small reserve for their clean-up",
             (T_BUDGET,)),
    Mutation("graceful/integrations/_common.py", "                    \"status\": 503,", "                    \"status\": 500,",
             "a request cut by the budget is answered 503", (T_SERVERS,)),
    Mutation("graceful/integrations/_common.py", "    raise SystemExit(EXIT_CANNOT_LISTEN)", "    raise SystemExit(1)",
             "a port in use exits 3 on every server",
             (f"{T_SERVERS}::test_a_port_in_use_is_one_line_and_exit_3_on_every_server",)),
    Mutation("graceful/_core/runtime.py", "        if run is None or loop is None or not _in_loop_thread(loop):", "        if True:",
             "until_shutdown() ends streams at the stop", (T_LONG,)),
    # -- supervised programs: readiness, death, policy, logs, control ----------------------
    Mutation("graceful/_core/signals.py", "        signal.signal = dispatch\n        try:\n            import uvloop.loop",
             "        try:\n            import uvloop.loop", "uvloop's handlers are seen at once, with no poll",
             (f"{T_RUNTIME}::test_a_handler_the_loop_installs_is_seen_at_once_without_polling",)),
    Mutation("graceful/_supervise/process.py", "                preexec_fn=_dies_with_us(self.death_signal),",
             "", "supervised programs die with a SIGKILLed app",
             (f"{T_SUPERVISOR}::test_programs_die_with_an_app_that_is_killed",
              f"{T_WORKERS}::test_ready_when_every_worker_is_and_nothing_outlives_a_killed_parent")),
    Mutation("graceful/_supervise/program.py", "        elif instance is self._current and not self._stopping:\n            self._set_state(ProcessState.RUNNING)",
             "        elif False:\n            pass", "READY=1 makes a program up",
             (f"{T_SUPERVISOR}::test_a_program_that_reports_readiness_gates_its_dependants",)),
    Mutation("graceful/_supervise/supervisor.py", "                if instance.pid in (pid, group):",
             "                if instance.pid == pid:", "a READY=1 from the program's group counts",
             (f"{T_SUPERVISOR}::test_a_program_that_reports_readiness_gates_its_dependants",)),
    Mutation("graceful/_supervise/program.py", "        return self.returncode in self.options.success_codes",
             "        return self.returncode == 0", "success_codes are not restarted",
             (f"{T_SUPERVISOR}::test_success_codes_and_a_steady_crasher",)),
    Mutation("graceful/_supervise/backoff.py", "            self._restarts.clear()  # up for longer than it was down: start over",
             "            pass", "the backoff starts over after a run longer than the delay",
             ("tests/test_backoff.py", f"{T_SUPERVISOR}::test_success_codes_and_a_steady_crasher")),
    Mutation("graceful/_supervise/workers.py", "            if len(up) == config.workers:",
             "            if up:", "--workers is ready when every worker is",
             (f"{T_WORKERS}::test_ready_when_every_worker_is_and_nothing_outlives_a_killed_parent",)),
    Mutation("graceful/_supervise/output.py", "        self._last = _LEVELS[named.group(1)] if named is not None else self.level",
             "        self._last = self.level", "a line that names its level is logged at it",
             (f"{T_SUPERVISOR}::test_each_line_of_a_program_keeps_its_level",)),
    Mutation("graceful/_supervise/control.py", "            if uid not in (0, os.geteuid()):",
             "            if False:", "ctl refuses other users",
             (f"{T_SUPERVISOR}::test_ctl_sees_restarts_stops_and_refuses_other_users",)),
    Mutation("graceful/_core/runtime.py", "    finally:\n        ready.cancel()\n",
             "    finally:\n        pass\n", "a main that ends in its first step is never ready",
             (f"{T_WORKERS}::test_a_worker_that_keeps_crashing_stops_the_app_with_exit_1",)),
)  # fmt: skip
