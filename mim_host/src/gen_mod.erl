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
        mongoose_instrument:set_up(optional_callback(Module, instrumentation, [HostType], [])),
        Started = Module:start(HostType, Opts),
        gen_hook:add_handlers(optional_callback(Module, hooks, [HostType], [])),
        check_links(Module, LinksBefore),
        ?LOG_DEBUG(#{what => module_started, module => Module, host_type => HostType}),
        as_ok_tuple(Started)
    catch
        Class:Reason:Stacktrace ->
            ?LOG_CRITICAL(#{what => module_start_failed, module => Module,
                            host_type => HostType, opts => Opts, class => Class,
                            reason => Reason, stacktrace => Stacktrace}),
            erlang:raise(Class, Reason, Stacktrace)
    end.

%% @doc Stops a listed module: hooks off, `stop/1' (waiting for the
%% processes it names in `{wait, _}'), then its instrumentation torn down.
-spec stop_module(host_type(), module()) -> ok.
stop_module(HostType, Module) ->
    assert_loaded(HostType, Module),
    gen_hook:delete_handlers(optional_callback(Module, hooks, [HostType], [])),
    await_processes(call_stop(HostType, Module)),
    mongoose_instrument:tear_down(optional_callback(Module, instrumentation, [HostType], [])).

%% @doc False for a module without `supported_features/0'.
-spec does_module_support(module(), module_feature()) -> boolean().
does_module_support(Module, Feature) ->
    lists:member(Feature, optional_callback(Module, supported_features, [], [])).

%% @doc The options that name backends; `[backend]' unless the module says.
-spec backend_opts(module()) -> [opt_key()].
backend_opts(Module) ->
    optional_callback(Module, backend_opts, [], [backend]).

-spec config_spec(module()) -> mongoose_config_spec:config_section().
config_spec(Module) ->
    Module:config_spec().

%%--------------------------------------------------------------------
%% Options
%%--------------------------------------------------------------------

%% @doc An option from a module's options map; a list is a path in nested
%% maps. Raises `{badkey, Key}' when missing.
-spec get_opt(opt_key() | key_path(), module_opts()) -> opt_value().
get_opt(KeyOrPath, Opts) when is_map(Opts) ->
    descend(as_path(KeyOrPath), Opts).

-spec get_opt(opt_key() | key_path(), module_opts(), opt_value()) -> opt_value().
get_opt(KeyOrPath, Opts, Default) ->
    descend_or(as_path(KeyOrPath), Opts, Default).

-spec lookup_module_opt(host_type(), module(), opt_key() | key_path()) ->
          {ok, opt_value()} | {error, not_found}.
lookup_module_opt(HostType, Module, KeyOrPath) ->
    mongoose_config:lookup_opt(config_path(HostType, Module, KeyOrPath)).

-spec get_module_opt(host_type(), module(), opt_key() | key_path()) -> opt_value().
get_module_opt(HostType, Module, KeyOrPath) ->
    mongoose_config:get_opt(config_path(HostType, Module, KeyOrPath)).

%% @doc As get_module_opt/3 with a default; the module must exist.
-spec get_module_opt(host_type(), module(), opt_key() | key_path(), opt_value()) -> opt_value().
get_module_opt(HostType, Module, KeyOrPath, Default) ->
    assert_module(Module),
    mongoose_config:get_opt(config_path(HostType, Module, KeyOrPath), Default).

%% @doc All options of a module, `#{}' when it is not listed.
-spec get_module_opts(host_type(), module()) -> module_opts().
get_module_opts(HostType, Module) ->
    assert_module(Module),
    mongoose_config:get_opt(config_path(HostType, Module, []), #{}).

%% @doc All options of a listed module; raises when it is not listed.
-spec get_loaded_module_opts(host_type(), module()) -> module_opts().
get_loaded_module_opts(HostType, Module) ->
    mongoose_config:get_opt(config_path(HostType, Module, [])).

%%--------------------------------------------------------------------
%% Loaded modules
%%--------------------------------------------------------------------

-spec loaded_modules() -> [module()].
loaded_modules() ->
    lists:usort([Module || HostType <- all_host_types(), Module <- loaded_modules(HostType)]).

-spec loaded_modules(host_type()) -> [module()].
loaded_modules(HostType) ->
    maps:keys(loaded_modules_with_opts(HostType)).

-spec loaded_modules_with_opts(host_type()) -> #{module() => module_opts()}.
loaded_modules_with_opts(HostType) ->
    mongoose_config:get_opt(modules_key(HostType)).

-spec loaded_modules_with_opts() -> #{host_type() => #{module() => module_opts()}}.
loaded_modules_with_opts() ->
    lists:foldl(fun(HostType, ByHostType) ->
                        ByHostType#{HostType => loaded_modules_with_opts(HostType)}
                end, #{}, all_host_types()).

-spec hosts_with_module(module()) -> [host_type()].
hosts_with_module(Module) ->
    lists:filter(fun(HostType) -> is_loaded(HostType, Module) end, all_host_types()).

-spec hosts_and_opts_with_module(module()) -> #{host_type() => module_opts()}.
hosts_and_opts_with_module(Module) ->
    lists:foldl(fun(HostType, Found) ->
                        case loaded_modules_with_opts(HostType) of
                            #{Module := Opts} -> Found#{HostType => Opts};
                            #{} -> Found
                        end
                end, #{}, all_host_types()).

-spec is_loaded(host_type(), module()) -> boolean().
is_loaded(HostType, Module) ->
    is_map_key(Module, loaded_modules_with_opts(HostType)).

%% @doc The registered name of a module's per-host process: `Base_Host'.
-spec get_module_proc(binary() | string(), module()) -> atom().
get_module_proc(Host, Base) when is_list(Host) ->
    list_to_atom(atom_to_list(Base) ++ [$_ | Host]);
get_module_proc(Host, Base) when is_binary(Host) ->
    %% byte by byte, as a string made of the binary's bytes would give
    binary_to_atom(<<(atom_to_binary(Base, latin1))/binary, $_, Host/binary>>, latin1).

%% @doc The module's dependencies on other modules (services are not ours).
-spec get_deps(host_type(), module(), module_opts()) -> gen_mod_deps:module_deps().
get_deps(HostType, Module, Opts) ->
    lists:filter(fun(Dep) -> element(1, Dep) =/= service end,
                 optional_callback(Module, deps, [HostType, Opts], [])).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec all_host_types() -> [host_type()].
all_host_types() ->
    mongoose_config:get_opt(hosts) ++ mongoose_config:get_opt(host_types).

-spec modules_key(host_type()) -> mongoose_config:key().
modules_key(HostType) ->
    {modules, HostType}.

%% Where a module's option sits in mongoose_config; `[]' names all its options.
-spec config_path(host_type(), module(), opt_key() | key_path()) -> key_path().
config_path(HostType, Module, KeyOrPath) ->
    [modules_key(HostType), Module | as_path(KeyOrPath)].

-spec as_path(opt_key() | key_path()) -> key_path().
as_path(Path) when is_list(Path) -> Path;
as_path(Key) when is_atom(Key) -> [Key].

-spec descend(key_path(), opt_value()) -> opt_value().
descend([], Value) -> Value;
descend([Key | Rest], Map) -> descend(Rest, maps:get(Key, Map)).

-spec descend_or(key_path(), opt_value(), opt_value()) -> opt_value().
descend_or([], Value, _Default) ->
    Value;
descend_or([Key | Rest], Map, Default) ->
    case maps:find(Key, Map) of
        {ok, Inner} -> descend_or(Rest, Inner, Default);
        error -> Default
    end.

%% Fails (undef) for a module that does not exist, before any config lookup.
-spec assert_module(module()) -> module().
assert_module(Module) ->
    Module:module_info(module).

-spec assert_loaded(host_type(), module()) -> ok.
assert_loaded(HostType, Module) ->
    is_loaded(HostType, Module)
        orelse error(#{what => module_not_loaded, host_type => HostType, module => Module,
                       text => <<"The module is not listed in mongoose_config">>}),
    ok.

%% A host type of the `host_types' list has dynamic domains: only modules
%% declaring `dynamic_domains' may run there.
-spec check_dynamic_domains_support(host_type(), module()) -> ok.
check_dynamic_domains_support(HostType, Module) ->
    StaticHost = lists:member(HostType, mongoose_config:get_opt(hosts)),
    StaticHost orelse does_module_support(Module, dynamic_domains)
        orelse error({Module, HostType, dynamic_domains_feature_is_not_supported}),
    ok.

%% Calls an optional callback of the behaviour, or gives Default when the
%% module does not export it (function_exported/3 needs the module loaded).
-spec optional_callback(module(), atom(), list(), Default) -> term() | Default.
optional_callback(Module, Callback, Args, Default) ->
    _ = code:ensure_loaded(Module),
    case erlang:function_exported(Module, Callback, length(Args)) of
        true -> apply(Module, Callback, Args);
        false -> Default
    end.

-spec as_ok_tuple(term()) -> {ok, term()}.
as_ok_tuple({ok, _} = Ok) -> Ok;
as_ok_tuple(Other) -> {ok, Other}.

-spec call_stop(host_type(), module()) -> term().
call_stop(HostType, Module) ->
    try
        Module:stop(HostType)
    catch
        Class:Reason:Stacktrace ->
            ?LOG_ERROR(#{what => module_stopping_failed, host_type => HostType,
                         stop_module => Module, class => Class, reason => Reason,
                         stacktrace => Stacktrace}),
            erlang:raise(Class, Reason, Stacktrace)
    end.

-spec await_processes(term()) -> ok.
await_processes({wait, Procs}) when is_list(Procs) -> lists:foreach(fun wait_for_process/1, Procs);
await_processes({wait, Proc}) -> wait_for_process(Proc);
await_processes(_Other) -> ok.

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
