%% @doc The test host's `mongoose_modules': runs the modules configured
%% under `{modules, HostType}' of every host type (`hosts' ++ `host_types'),
%% a module's dependencies before it.
%%
%% The configured map already holds the resolved dependencies (the config
%% parser resolves them); a dependency absent from it only orders the rest.
%% The run-time calls keep `{modules, HostType}' equal to what runs and
%% reload gen_hook afterwards; `start/0' and `stop/0' leave the reload to
%% the boot sequence, which does it once.
-module(mongoose_modules).

-export([start/0, stop/0]).
-export([replace_modules/3, ensure_stopped/2, ensure_started/3]).

-type module_opts() :: gen_mod:module_opts().
-type module_map() :: gen_mod_deps:module_map().

-export_type([module_opts/0, module_map/0]).

%% @doc Boots every host type's modules (starting the host's processes first
%% when they are not up yet).
-spec start() -> ok.
start() ->
    {ok, _} = ejabberd_sup:ensure_started(),
    each_host_type(
      fun(HostType) ->
              lists:foreach(fun({Module, Opts}) ->
                                    {ok, _} = gen_mod:start_module(HostType, Module, Opts)
                            end, in_start_order(HostType))
      end).

%% @doc Stops every host type's modules, those depending on others first.
-spec stop() -> ok.
stop() ->
    each_host_type(
      fun(HostType) ->
              lists:foreach(fun({Module, _Opts}) -> gen_mod:stop_module(HostType, Module) end,
                            lists:reverse(in_start_order(HostType)))
      end).

%% @doc Swaps modules at run time (tests, debugging): `ToStop' go, `ToEnsure'
%% run with their options, and whatever only the touched modules needed is
%% stopped unless the new set still needs it.
-spec replace_modules(mongooseim:host_type(), [module()], module_map()) -> ok.
replace_modules(HostType, ToStop, ToEnsure) ->
    Running = running(HostType),
    Touched = ToStop ++ maps:keys(ToEnsure),
    Leaving = gen_mod_deps:resolve_deps(HostType, maps:with(Touched, Running)),
    Wanted = gen_mod_deps:resolve_deps(
               HostType, maps:merge(maps:without(maps:keys(Leaving), Running), ToEnsure)),
    Obsolete = [Module || {Module, _} <- lists:reverse(gen_mod_deps:sort_deps(HostType, Leaving)),
                          not maps:is_key(Module, Wanted)],
    lists:foreach(fun(Module) -> stop_if_running(HostType, Module) end, Obsolete),
    lists:foreach(fun({Module, Opts}) -> run_with(HostType, Module, Opts) end,
                  gen_mod_deps:sort_deps(HostType, Wanted)),
    gen_hook:reload_hooks().

%% @doc Stops the module when it runs; its dependencies stay.
-spec ensure_stopped(mongooseim:host_type(), module()) ->
          already_stopped | {stopped, module_opts()}.
ensure_stopped(HostType, Module) ->
    then_reload_hooks(stop_if_running(HostType, Module)).

%% @doc Makes the module run with `Opts' (a restart when it runs with other
%% options); its dependencies are not touched.
-spec ensure_started(mongooseim:host_type(), module(), module_opts()) ->
          already_started | {started, term()} | {restarted, module_opts(), term()}.
ensure_started(HostType, Module, Opts) ->
    then_reload_hooks(run_with(HostType, Module, Opts)).

%%--------------------------------------------------------------------
%% Internals
%%--------------------------------------------------------------------

-spec then_reload_hooks(Result) -> Result.
then_reload_hooks(Result) ->
    gen_hook:reload_hooks(),
    Result.

-spec stop_if_running(mongooseim:host_type(), module()) ->
          already_stopped | {stopped, module_opts()}.
stop_if_running(HostType, Module) ->
    Running = running(HostType),
    case Running of
        #{Module := Opts} ->
            halt(HostType, Module, Running),
            {stopped, Opts};
        #{} ->
            already_stopped
    end.

-spec run_with(mongooseim:host_type(), module(), module_opts()) ->
          already_started | {started, term()} | {restarted, module_opts(), term()}.
run_with(HostType, Module, Opts) ->
    Running = running(HostType),
    case Running of
        #{Module := Opts} ->
            already_started;
        #{Module := OldOpts} ->
            halt(HostType, Module, Running),
            {restarted, OldOpts, launch(HostType, Module, Opts, maps:remove(Module, Running))};
        #{} ->
            {started, launch(HostType, Module, Opts, Running)}
    end.

%% gen_mod reads a module's options from the config while it starts, so the
%% module is recorded first; a start that crashes takes the record back.
-spec launch(mongooseim:host_type(), module(), module_opts(), module_map()) -> term().
launch(HostType, Module, Opts, Others) ->
    record(HostType, Others#{Module => Opts}),
    try gen_mod:start_module(HostType, Module, Opts) of
        {ok, Started} -> Started
    catch
        Class:Reason:Stacktrace ->
            record(HostType, Others),
            erlang:raise(Class, Reason, Stacktrace)
    end.

-spec halt(mongooseim:host_type(), module(), module_map()) -> ok.
halt(HostType, Module, Running) ->
    gen_mod:stop_module(HostType, Module),
    record(HostType, maps:remove(Module, Running)).

-spec in_start_order(mongooseim:host_type()) -> gen_mod_deps:module_list().
in_start_order(HostType) ->
    gen_mod_deps:sort_deps(HostType, running(HostType)).

-spec running(mongooseim:host_type()) -> module_map().
running(HostType) ->
    mongoose_config:get_opt({modules, HostType}).

-spec record(mongooseim:host_type(), module_map()) -> ok.
record(HostType, Modules) ->
    mongoose_config:set_opt({modules, HostType}, Modules).

-spec each_host_type(fun((mongooseim:host_type()) -> term())) -> ok.
each_host_type(Fun) ->
    HostTypes = mongoose_config:get_opt(hosts) ++ mongoose_config:get_opt(host_types),
    lists:foreach(Fun, HostTypes).
