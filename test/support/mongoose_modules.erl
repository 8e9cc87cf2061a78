%% @doc The test host's `mongoose_modules': starts and stops the modules
%% configured under `{modules, HostType}' for every host type (`hosts' ++
%% `host_types'), dependencies first, as MongooseIM does.
%%
%% The configured map is expected to hold the resolved dependencies already
%% (MongooseIM's config parser runs `gen_mod_deps:resolve_deps/2'); a
%% dependency missing from it only orders the others. The run-time functions
%% keep `{modules, HostType}' in step with what runs and reload gen_hook;
%% `start/0' and `stop/0' do not (the boot sequence reloads once after them).
-module(mongoose_modules).

-export([start/0, stop/0]).
-export([replace_modules/3, ensure_stopped/2, ensure_started/3]).

-type module_opts() :: gen_mod:module_opts().
-type module_map() :: gen_mod_deps:module_map().

-export_type([module_opts/0, module_map/0]).

%% @doc Starts every configured module, dependencies first (and the host's
%% processes first, unless they run).
-spec start() -> ok.
start() ->
    {ok, _} = ejabberd_sup:ensure_started(),
    lists:foreach(
      fun(HostType) ->
              [{ok, _} = gen_mod:start_module(HostType, Module, Opts)
               || {Module, Opts} <- sorted_modules(HostType)]
      end, all_host_types()).

%% @doc Stops every configured module, dependent modules first.
-spec stop() -> ok.
stop() ->
    lists:foreach(
      fun(HostType) ->
              [gen_mod:stop_module(HostType, Module)
               || {Module, _} <- lists:reverse(sorted_modules(HostType))]
      end, all_host_types()).

%% @doc Stops the modules in `ToStop' and (re)starts those in `ToEnsure' with
%% their dependencies; dependencies no longer needed are stopped too. For
%% tests and debugging, as in MongooseIM.
-spec replace_modules(mongooseim:host_type(), [module()], module_map()) -> ok.
replace_modules(HostType, ToStop, ToEnsure) ->
    Current = get_modules(HostType),
    Old = gen_mod_deps:resolve_deps(HostType,
                                    maps:with(ToStop ++ maps:keys(ToEnsure), Current)),
    SortedOld = gen_mod_deps:sort_deps(HostType, Old),
    Target = gen_mod_deps:resolve_deps(HostType,
                                       maps:merge(maps:without(maps:keys(Old), Current),
                                                  ToEnsure)),
    [ensure_module_stopped(HostType, Module)
     || {Module, _} <- lists:reverse(SortedOld), not maps:is_key(Module, Target)],
    [ensure_module_started(HostType, Module, Opts)
     || {Module, Opts} <- gen_mod_deps:sort_deps(HostType, Target)],
    gen_hook:reload_hooks().

%% @doc Stops the module if it runs (dependencies are left alone).
-spec ensure_stopped(mongooseim:host_type(), module()) ->
          already_stopped | {stopped, module_opts()}.
ensure_stopped(HostType, Module) ->
    Result = ensure_module_stopped(HostType, Module),
    gen_hook:reload_hooks(),
    Result.

%% @doc Makes the module run with `Opts', restarting it if its options
%% differ (dependencies are left alone).
-spec ensure_started(mongooseim:host_type(), module(), module_opts()) ->
          already_started | {started, term()} | {restarted, module_opts(), term()}.
ensure_started(HostType, Module, Opts) ->
    Result = ensure_module_started(HostType, Module, Opts),
    gen_hook:reload_hooks(),
    Result.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec ensure_module_stopped(mongooseim:host_type(), module()) ->
          already_stopped | {stopped, module_opts()}.
ensure_module_stopped(HostType, Module) ->
    Modules = get_modules(HostType),
    case maps:find(Module, Modules) of
        error ->
            already_stopped;
        {ok, Opts} ->
            stop_module(HostType, Module, Modules),
            {stopped, Opts}
    end.

-spec ensure_module_started(mongooseim:host_type(), module(), module_opts()) ->
          already_started | {started, term()} | {restarted, module_opts(), term()}.
ensure_module_started(HostType, Module, Opts) ->
    Modules = get_modules(HostType),
    case maps:find(Module, Modules) of
        error ->
            {ok, Result} = start_module(HostType, Module, Opts, Modules),
            {started, Result};
        {ok, Opts} ->
            already_started;
        {ok, PrevOpts} ->
            stop_module(HostType, Module, Modules),
            {ok, Result} = start_module(HostType, Module, Opts, maps:remove(Module, Modules)),
            {restarted, PrevOpts, Result}
    end.

%% The module is listed before it starts (gen_mod requires it) and unlisted
%% again if the start fails.
-spec start_module(mongooseim:host_type(), module(), module_opts(), module_map()) ->
          {ok, term()}.
start_module(HostType, Module, Opts, Modules) ->
    set_modules(HostType, Modules#{Module => Opts}),
    try
        gen_mod:start_module(HostType, Module, Opts)
    catch
        Class:Reason:Stacktrace ->
            set_modules(HostType, Modules),
            erlang:raise(Class, Reason, Stacktrace)
    end.

-spec stop_module(mongooseim:host_type(), module(), module_map()) -> ok.
stop_module(HostType, Module, Modules) ->
    gen_mod:stop_module(HostType, Module),
    set_modules(HostType, maps:remove(Module, Modules)).

-spec sorted_modules(mongooseim:host_type()) -> gen_mod_deps:module_list().
sorted_modules(HostType) ->
    gen_mod_deps:sort_deps(HostType, get_modules(HostType)).

-spec get_modules(mongooseim:host_type()) -> module_map().
get_modules(HostType) ->
    mongoose_config:get_opt({modules, HostType}).

-spec set_modules(mongooseim:host_type(), module_map()) -> ok.
set_modules(HostType, Modules) ->
    mongoose_config:set_opt({modules, HostType}, Modules).

-spec all_host_types() -> [mongooseim:host_type()].
all_host_types() ->
    mongoose_config:get_opt(hosts) ++ mongoose_config:get_opt(host_types).
