%% @doc The test host's `gen_hook', with MongooseIM 6.x semantics.
%%
%% A gen_server keeps the handlers per `{HookName, Tag}' (Tag a host type or
%% `global'), sorted by priority; `run_fold/4' reads a snapshot published in
%% `persistent_term' by `reload_hooks/0', so handlers added or deleted take
%% effect only at the next reload (mongoose_modules reloads after run-time
%% changes, the boot sequence once after starting modules).
%%
%% The host starts itself: adding handlers or reloading starts ejabberd_sup
%% (and this server under it) if needed. A test may also start its own
%% server with `start_link/0', as MongooseIM's unit tests do.
-module(gen_hook).

-behaviour(gen_server).

-export([start_link/0,
         add_handler/5, delete_handler/5,
         add_handlers/1, delete_handlers/1,
         run_fold/4, reload_hooks/0]).
%% exported so that tests can trace or mock it, as in MongooseIM
-export([error_running_hook/5]).

-export([init/1, handle_call/3, handle_cast/2, handle_info/2, terminate/2]).

-include_lib("kernel/include/logger.hrl").

-type hook_name() :: atom().
-type hook_tag() :: mongooseim:host_type_or_global().
-type hook_acc() :: any().
-type hook_params() :: map().
-type hook_extra() :: map().
-type extra() :: #{hook_name := hook_name(),
                   hook_tag := hook_tag(),
                   host_type => mongooseim:host_type(),
                   _ => _}.
-type hook_fn_ret() :: hook_fn_ret(hook_acc()).
-type hook_fn_ret(Acc) :: {ok | stop, Acc}.
-type hook_fn() :: fun((hook_acc(), hook_params(), extra()) -> hook_fn_ret()).
-type hook_tuple() :: hook_tuple(hook_fn()).
-type hook_tuple(HookFn) :: {hook_name(), hook_tag(), HookFn, hook_extra(), pos_integer()}.
-type hook_list() :: hook_list(hook_fn()).
-type hook_list(HookFn) :: [hook_tuple(HookFn)].
-type key() :: {hook_name(), hook_tag()}.

-export_type([hook_name/0, hook_tag/0, hook_fn/0, hook_list/0, hook_list/1,
              hook_fn_ret/0, hook_fn_ret/1, hook_tuple/0, hook_params/0, extra/0]).

-record(hook_handler, {prio :: pos_integer(),
                       hook_fn :: hook_fn(),
                       extra :: extra()}).

-type state() :: #{key() => [#hook_handler{}]}.

%%--------------------------------------------------------------------
%% API
%%--------------------------------------------------------------------

%% @doc Starts the server linked to the caller; one started by the host's
%% supervisor is stopped first (its handlers go with it).
-spec start_link() -> gen_server:start_ret().
start_link() ->
    ok = ejabberd_sup:release_child(?MODULE),
    gen_server:start_link({local, ?MODULE}, ?MODULE, [], []).

-spec add_handler(hook_name(), hook_tag(), hook_fn(), hook_extra(), pos_integer()) -> ok.
add_handler(HookName, Tag, Fun, Extra, Prio) ->
    add_handlers([{HookName, Tag, Fun, Extra, Prio}]).

-spec delete_handler(hook_name(), hook_tag(), hook_fn(), hook_extra(), pos_integer()) -> ok.
delete_handler(HookName, Tag, Fun, Extra, Prio) ->
    delete_handlers([{HookName, Tag, Fun, Extra, Prio}]).

%% @doc Validates each tuple in the caller (a bad one raises there) and
%% registers it; a handler equal to a registered one is ignored with a warning.
-spec add_handlers(hook_list()) -> ok.
add_handlers(HookTuples) ->
    lists:foreach(fun(Tuple) -> call({add_handler, key(Tuple), make_handler(Tuple)}) end,
                  HookTuples).

%% @doc Deleting from a server that does not run is a no-op: a new one would
%% have no handlers either.
-spec delete_handlers(hook_list()) -> ok.
delete_handlers(HookTuples) ->
    Handlers = [{key(Tuple), make_handler(Tuple)} || Tuple <- HookTuples],
    case whereis(?MODULE) of
        undefined ->
            ok;
        _ ->
            lists:foreach(fun({Key, Handler}) ->
                                  gen_server:call(?MODULE, {delete_handler, Key, Handler})
                          end, Handlers)
    end.

%% @doc Runs the handlers of `HookName' for `Tag' by ascending priority.
%% `{ok, Acc}' passes Acc on, `{stop, Acc}' ends the run; a crashing handler is
%% logged (`hook_failed') and skipped with the accumulator unchanged.
-spec run_fold(hook_name(), hook_tag(), hook_acc(), hook_params()) -> hook_fn_ret().
run_fold(HookName, Tag, Acc, Params) ->
    Published = persistent_term:get(?MODULE, #{}),
    Key = {HookName, Tag},
    run_handlers(maps:get(Key, Published, []), Acc, Params, Key).

%% @doc Publishes the current handlers to `run_fold/4'.
-spec reload_hooks() -> ok.
reload_hooks() ->
    call(reload_hooks).

%% @doc Logs a handler's crash (separate function so tests can trace it).
-spec error_running_hook(map(), #hook_handler{}, hook_acc(), hook_params(), key()) -> ok.
error_running_hook(CrashInfo, Handler, Acc, Params, Key) ->
    Context = #{key => Key, handler => Handler, acc => Acc, params => Params},
    ?LOG_ERROR(maps:merge(CrashInfo, Context#{what => hook_failed,
                                              text => <<"A hook handler crashed">>})).

%%--------------------------------------------------------------------
%% gen_server callbacks
%%--------------------------------------------------------------------

-spec init([]) -> {ok, state()}.
init([]) ->
    %% trap exits so that terminate/2 erases the snapshot when the host stops
    process_flag(trap_exit, true),
    {ok, #{}}.

-spec handle_call(term(), gen_server:from(), state()) ->
          {reply, ok | {error, map()}, state()} | {reply, ok, state(), hibernate}.
handle_call({add_handler, Key, Handler}, _From, State) ->
    Handlers = maps:get(Key, State, []),
    case lists:any(same_handler(Handler), Handlers) of
        true ->
            ?LOG_WARNING(#{what => duplicated_handler, key => Key, handler => Handler}),
            {reply, ok, State};
        false ->
            %% keymerge keeps earlier registrations first among equal priorities
            NewHandlers = lists:keymerge(#hook_handler.prio, Handlers, [Handler]),
            {reply, ok, State#{Key => NewHandlers}}
    end;
handle_call({delete_handler, Key, Handler}, _From, State) ->
    case maps:find(Key, State) of
        {ok, Handlers} ->
            Remaining = lists:filter(fun(H) -> not (same_handler(Handler))(H) end, Handlers),
            {reply, ok, State#{Key := Remaining}};
        error ->
            {reply, ok, State}
    end;
handle_call(reload_hooks, _From, State) ->
    persistent_term:put(?MODULE, State),
    {reply, ok, State, hibernate};
handle_call(Request, From, State) ->
    ?LOG_WARNING(#{what => unexpected_call, msg => Request, call_from => From}),
    {reply, {error, #{what => unexpected_call}}, State}.

-spec handle_cast(term(), state()) -> {noreply, state()}.
handle_cast(Msg, State) ->
    unexpected(cast, Msg, State).

-spec handle_info(term(), state()) -> {noreply, state()}.
handle_info(Info, State) ->
    unexpected(info, Info, State).

-spec unexpected(cast | info, term(), state()) -> {noreply, state()}.
unexpected(Kind, Msg, State) ->
    ?LOG_WARNING(#{what => gen_hook_unexpected_message, kind => Kind, msg => Msg}),
    {noreply, State}.

-spec terminate(term(), state()) -> ok.
terminate(_Reason, _State) ->
    %% run_fold/4 then sees no handlers rather than a dead server's.
    _ = persistent_term:erase(?MODULE),
    ok.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec call(term()) -> ok.
call(Request) ->
    mim_host_lib:call(?MODULE, Request).

-spec run_handlers([#hook_handler{}], hook_acc(), hook_params(), key()) -> hook_fn_ret().
run_handlers(Handlers, Acc, Params, Key) ->
    fold_until_stop(fun(Handler, AccIn) -> apply_handler(Handler, AccIn, Params, Key) end,
                    Acc, Handlers).

-spec fold_until_stop(fun((#hook_handler{}, hook_acc()) -> hook_fn_ret()), hook_acc(),
                      [#hook_handler{}]) -> hook_fn_ret().
fold_until_stop(_Step, Acc, []) ->
    {ok, Acc};
fold_until_stop(Step, Acc, [Handler | Rest]) ->
    case Step(Handler, Acc) of
        {ok, Next} -> fold_until_stop(Step, Next, Rest);
        {stop, _} = Stopped -> Stopped
    end.

%% A crash is reported through the exported error_running_hook/5 (tests trace
%% it) and counts as `{ok, Acc}' with the accumulator as it was.
-spec apply_handler(#hook_handler{}, hook_acc(), hook_params(), key()) -> hook_fn_ret().
apply_handler(#hook_handler{hook_fn = Fun, extra = Extra} = Handler, Acc, Params, Key) ->
    try
        Fun(Acc, Params, Extra)
    catch
        Class:Reason:Stacktrace ->
            ?MODULE:error_running_hook(#{class => Class, reason => Reason,
                                         stacktrace => Stacktrace},
                                       Handler, Acc, Params, Key),
            {ok, Acc}
    end.

-spec key(hook_tuple()) -> key().
key({HookName, Tag, _Fun, _Extra, _Prio}) ->
    {HookName, Tag}.

%% Only a valid tuple with an exported, external fun makes a handler;
%% anything else raises in the caller, as in MongooseIM.
-spec make_handler(hook_tuple()) -> #hook_handler{}.
make_handler({HookName, Tag, Fun, Extra, Prio})
  when is_atom(HookName), (is_binary(Tag) orelse Tag =:= global),
       is_function(Fun, 3), is_map(Extra), is_integer(Prio), Prio > 0 ->
    check_hook_function(Fun),
    Added = case Tag of
                global -> #{hook_name => HookName, hook_tag => Tag};
                HostType -> #{hook_name => HookName, hook_tag => Tag, host_type => HostType}
            end,
    %% the handler's own Extra keys win over the added ones
    #hook_handler{prio = Prio, hook_fn = Fun, extra = maps:merge(Added, Extra)};
make_handler(Tuple) ->
    error(#{what => invalid_hook_handler, handler => Tuple}).

%% A handler must be `fun Module:Name/3' with Module loadable and Name/3
%% exported: a local fun would not survive a code reload of its module.
-spec check_hook_function(hook_fn()) -> ok.
check_hook_function(Fun) ->
    {type, Type} = erlang:fun_info(Fun, type),
    Type =:= external
        orelse error(#{what => only_external_function_references_allowed, function => Fun}),
    {Module, Name} = fun_mf(Fun),
    Loaded = code:ensure_loaded(Module),
    Loaded =:= {module, Module}
        orelse error(#{what => module_is_not_loaded, module => Module, error => Loaded}),
    erlang:function_exported(Module, Name, 3)
        orelse error(#{what => function_is_not_exported, function => Fun}),
    ok.

%% Handlers are equal when priority, extra and the fun's module and name are;
%% funs themselves are not compared (their equality is not well defined).
-spec same_handler(#hook_handler{}) -> fun((#hook_handler{}) -> boolean()).
same_handler(#hook_handler{prio = Prio, hook_fn = Fun, extra = Extra}) ->
    MF = fun_mf(Fun),
    fun(#hook_handler{prio = P, hook_fn = F, extra = E}) ->
            P =:= Prio andalso E =:= Extra andalso fun_mf(F) =:= MF
    end.

-spec fun_mf(hook_fn()) -> {module(), atom()}.
fun_mf(Fun) ->
    {module, M} = erlang:fun_info(Fun, module),
    {name, N} = erlang:fun_info(Fun, name),
    {M, N}.
