%% @doc The test host's `gen_mod': the module behaviour, module start/stop and
%% option lookups, with MongooseIM's semantics.
%%
%% Module options live in mongoose_config under `{modules, HostType}' (a map
%% `#{Module => Opts}'); a module is "loaded" when it is listed there, which
%% mongoose_modules ensures before starting it. Starting a module: check
%% dynamic domains support, set up its `instrumentation/1', call `start/2',
%% add its `hooks/1'. Stopping: delete the hooks, call `stop/1', tear down the
%% instrumentation. Hooks take effect when gen_hook reloads.
-module(gen_mod).

-export([start_module/3, stop_module/2,
         does_module_support/2, backend_opts/1, config_spec/1,
         get_opt/2, get_opt/3,
         lookup_module_opt/3, get_module_opt/3, get_module_opt/4,
         get_module_opts/2, get_loaded_module_opts/2,
         loaded_modules/0, loaded_modules/1,
         loaded_modules_with_opts/0, loaded_modules_with_opts/1,
         hosts_with_module/1, hosts_and_opts_with_module/1,
         get_module_proc/2, is_loaded/2, get_deps/3]).

-include_lib("kernel/include/logger.hrl").

-type module_feature() :: atom().
-type host_type() :: mongooseim:host_type().
-type key_path() :: mongoose_config:key_path().
-type opt_key() :: atom().
-type opt_value() :: mongoose_config:value().
-type module_opts() :: #{opt_key() => opt_value()}.

-export_type([key_path/0, opt_key/0, opt_value/0, module_opts/0, host_type/0,
              module_feature/0]).

-callback start(host_type(), module_opts()) -> any().
-callback stop(host_type()) -> any().
-callback hooks(host_type()) -> gen_hook:hook_list().
-callback supported_features() -> [module_feature()].
-callback config_spec() -> mongoose_config_spec:config_section().
-callback instrumentation(host_type()) -> [mongoose_instrument:spec()].
-callback reported_module_options(host_type(), module_opts()) -> [{opt_key(), opt_value()}].
-callback deps(host_type(), module_opts()) -> gen_mod_deps:deps().
-callback backend_opts() -> [opt_key()].

-optional_callbacks([hooks/1, config_spec/0, supported_features/0, instrumentation/1,
                     reported_module_options/2, deps/2, backend_opts/0]).

%%--------------------------------------------------------------------
%% Start and stop (called by mongoose_modules)
%%--------------------------------------------------------------------

%% @doc Starts a module listed in the config. A failure is logged and raised
%% (MongooseIM halts the node outside tests; a test wants the exception).
-spec start_module(host_type(), module(), module_opts()) -> {ok, term()}.
start_module(HostType, Module, Opts) ->
    assert_loaded(HostType, Module),
    {links, LinksBefore} = process_info(self(), links),
    try
        check_dynamic_domains_support(HostType, Module),
        run_if_exported(Module, instrumentation, HostType, fun mongoose_instrument:set_up/1),
        Result = Module:start(HostType, Opts),
        run_if_exported(Module, hooks, HostType, fun gen_hook:add_handlers/1),
        check_links(Module, LinksBefore),
        ?LOG_DEBUG(#{what => module_started, module => Module, host_type => HostType}),
        case Result of
            {ok, _} -> Result;
            _ -> {ok, Result}
        end
    catch
        Class:Reason:Stacktrace ->
            ?LOG_CRITICAL(#{what => module_start_failed, module => Module,
                            host_type => HostType, opts => Opts, class => Class,
                            reason => Reason, stacktrace => Stacktrace}),
            erlang:raise(Class, Reason, Stacktrace)
    end.

%% @doc Stops a module listed in the config. `stop/1' may return
%% `{wait, ProcOrProcs}': those processes are awaited (5 s, then killed).
-spec stop_module(host_type(), module()) -> ok.
stop_module(HostType, Module) ->
    assert_loaded(HostType, Module),
    run_if_exported(Module, hooks, HostType, fun gen_hook:delete_handlers/1),
    try Module:stop(HostType) of
        {wait, Procs} when is_list(Procs) -> lists:foreach(fun wait_for_process/1, Procs);
        {wait, Proc} -> wait_for_process(Proc);
        _ -> ok
    catch
        Class:Reason:Stacktrace ->
            ?LOG_ERROR(#{what => module_stopping_failed, host_type => HostType,
                         stop_module => Module, class => Class, reason => Reason,
                         stacktrace => Stacktrace}),
            erlang:raise(Class, Reason, Stacktrace)
    end,
    run_if_exported(Module, instrumentation, HostType, fun mongoose_instrument:tear_down/1),
    ok.

-spec does_module_support(module(), module_feature()) -> boolean().
does_module_support(Module, Feature) ->
    %% function_exported/3 is false for a module not loaded yet
    _ = code:ensure_loaded(Module),
    erlang:function_exported(Module, supported_features, 0)
        andalso lists:member(Feature, Module:supported_features()).

-spec backend_opts(module()) -> [opt_key()].
backend_opts(Module) ->
    case erlang:function_exported(Module, backend_opts, 0) of
        true -> Module:backend_opts();
        false -> [backend]
    end.

-spec config_spec(module()) -> mongoose_config_spec:config_section().
config_spec(Module) ->
    Module:config_spec().

%%--------------------------------------------------------------------
%% Options
%%--------------------------------------------------------------------

%% @doc An option from a module's options map; a list is a path in nested
%% maps. Raises `{badkey, Key}' when missing.
-spec get_opt(opt_key() | key_path(), module_opts()) -> opt_value().
get_opt(Path, Opts) when is_list(Path), is_map(Opts) ->
    lists:foldl(fun maps:get/2, Opts, Path);
get_opt(Key, Opts) when is_map(Opts) ->
    maps:get(Key, Opts).

-spec get_opt(opt_key() | key_path(), module_opts(), opt_value()) -> opt_value().
get_opt(Path, Opts, Default) ->
    try
        get_opt(Path, Opts)
    catch
        error:{badkey, _} -> Default
    end.

-spec lookup_module_opt(host_type(), module(), opt_key() | key_path()) ->
          {ok, opt_value()} | {error, not_found}.
lookup_module_opt(HostType, Module, Key) ->
    mongoose_config:lookup_opt(config_path(HostType, Module, Key)).

-spec get_module_opt(host_type(), module(), opt_key() | key_path()) -> opt_value().
get_module_opt(HostType, Module, Key) ->
    mongoose_config:get_opt(config_path(HostType, Module, Key)).

-spec get_module_opt(host_type(), module(), opt_key() | key_path(), opt_value()) -> opt_value().
get_module_opt(HostType, Module, Key, Default) ->
    assert_module(Module),
    mongoose_config:get_opt(config_path(HostType, Module, Key), Default).

%% @doc The module's options, `#{}' if it is not configured.
-spec get_module_opts(host_type(), module()) -> module_opts().
get_module_opts(HostType, Module) ->
    assert_module(Module),
    mongoose_config:get_opt([{modules, HostType}, Module], #{}).

%% @doc The options of a configured module; raises if it is not.
-spec get_loaded_module_opts(host_type(), module()) -> module_opts().
get_loaded_module_opts(HostType, Module) ->
    mongoose_config:get_opt([{modules, HostType}, Module]).

%%--------------------------------------------------------------------
%% Loaded modules
%%--------------------------------------------------------------------

-spec loaded_modules() -> [module()].
loaded_modules() ->
    lists:usort(lists:flatmap(fun loaded_modules/1, all_host_types())).

-spec loaded_modules(host_type()) -> [module()].
loaded_modules(HostType) ->
    maps:keys(loaded_modules_with_opts(HostType)).

-spec loaded_modules_with_opts(host_type()) -> #{module() => module_opts()}.
loaded_modules_with_opts(HostType) ->
    mongoose_config:get_opt({modules, HostType}).

-spec loaded_modules_with_opts() -> #{host_type() => #{module() => module_opts()}}.
loaded_modules_with_opts() ->
    maps:from_list([{HT, loaded_modules_with_opts(HT)} || HT <- all_host_types()]).

-spec hosts_with_module(module()) -> [host_type()].
hosts_with_module(Module) ->
    [HT || HT <- all_host_types(), is_loaded(HT, Module)].

-spec hosts_and_opts_with_module(module()) -> #{host_type() => module_opts()}.
hosts_and_opts_with_module(Module) ->
    maps:from_list([{HT, Opts} || HT <- all_host_types(),
                                  {ok, Opts} <- [mongoose_config:lookup_opt(
                                                   [{modules, HT}, Module])]]).

-spec is_loaded(host_type(), module()) -> boolean().
is_loaded(HostType, Module) ->
    maps:is_key(Module, loaded_modules_with_opts(HostType)).

%% @doc A per-host process name, `<Base>_<Host>'.
-spec get_module_proc(binary() | string(), module()) -> atom().
get_module_proc(Host, Base) when is_binary(Host) ->
    get_module_proc(binary_to_list(Host), Base);
get_module_proc(Host, Base) ->
    list_to_atom(atom_to_list(Base) ++ "_" ++ Host).

%% @doc The module's dependencies for these options, services left out.
-spec get_deps(host_type(), module(), module_opts()) -> gen_mod_deps:module_deps().
get_deps(HostType, Module, Opts) ->
    _ = code:ensure_loaded(Module),
    case erlang:function_exported(Module, deps, 2) of
        true -> [Dep || Dep <- Module:deps(HostType, Opts), element(1, Dep) =/= service];
        false -> []
    end.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec all_host_types() -> [host_type()].
all_host_types() ->
    mongoose_config:get_opt(hosts) ++ mongoose_config:get_opt(host_types).

-spec config_path(host_type(), module(), opt_key() | key_path()) -> key_path().
config_path(HostType, Module, Path) when is_list(Path) ->
    [{modules, HostType}, Module | Path];
config_path(HostType, Module, Key) when is_atom(Key) ->
    [{modules, HostType}, Module, Key].

%% Catches a wrong argument order early, as MongooseIM's dev builds do.
-spec assert_module(module()) -> module().
assert_module(Module) ->
    Module:module_info(module).

-spec assert_loaded(host_type(), module()) -> ok.
assert_loaded(HostType, Module) ->
    case is_loaded(HostType, Module) of
        true -> ok;
        false -> error(#{what => module_not_loaded,
                         text => <<"Module missing from mongoose_config">>,
                         host_type => HostType, module => Module})
    end.

%% Host types under `hosts' are static; the others (`host_types') serve
%% dynamic domains, which the module must declare it supports.
-spec check_dynamic_domains_support(host_type(), module()) -> ok.
check_dynamic_domains_support(HostType, Module) ->
    case lists:member(HostType, mongoose_config:get_opt(hosts))
        orelse does_module_support(Module, dynamic_domains) of
        true -> ok;
        false -> error({Module, HostType, dynamic_domains_feature_is_not_supported})
    end.

-spec run_if_exported(module(), hooks | instrumentation, host_type(), fun((list()) -> ok)) ->
          ok.
run_if_exported(Module, Callback, HostType, Fun) ->
    _ = code:ensure_loaded(Module),
    case erlang:function_exported(Module, Callback, 1) of
        true -> Fun(Module:Callback(HostType));
        false -> ok
    end.

%% start/2 must not link the caller to anything: module processes belong
%% under a supervisor, not under whoever starts the module.
-spec check_links(module(), [pid() | port()]) -> ok.
check_links(Module, LinksBefore) ->
    {links, LinksAfter} = process_info(self(), links),
    case lists:sort(LinksBefore) =:= lists:sort(LinksAfter) of
        true -> ok;
        false -> ?LOG_ERROR(#{what => unexpected_links, module => Module,
                              links_before => LinksBefore, links_after => LinksAfter})
    end.

-spec wait_for_process(atom() | pid() | {atom(), node()}) -> ok.
wait_for_process(Process) ->
    MRef = monitor(process, Process),
    receive
        {'DOWN', MRef, process, _, _} -> ok
    after 5000 ->
            catch exit(whereis_proc(Process), kill),
            receive {'DOWN', MRef, process, _, _} -> ok after 5000 -> ok end
    end.

-spec whereis_proc(atom() | pid() | {atom(), node()}) -> pid() | undefined.
whereis_proc(Pid) when is_pid(Pid) -> Pid;
whereis_proc(Name) when is_atom(Name) -> whereis(Name);
whereis_proc(_) -> undefined.
