%% @doc A backend module's hold on the Rust pools it uses on one host type:
%% acquired when the module starts, or on first use when the pool is
%% configured after that; released when the module stops.
%%
%% The pools themselves are `mongoose_event_pusher_pool_registry''s: it
%% starts a pool for its first user, points its users at the new pool when
%% the pool's owner restarts, and stops it after its last user. A hold
%% remembers whether this module on this host type is one of those users, so
%% that a stop releases exactly what the start (or a later use) acquired.
%%
%% The hot path is pool/3, one persistent_term read. The holds of a module
%% on a host type are read only when its pool is missing or the module
%% stops: `{?MODULE, Module, HostType} => #{{Type, Tag} => atomics_ref()}',
%% each atomics array holding the hold's state and the earliest time of its
%% next acquire on use.
-module(mongoose_event_pusher_pool_hold).

%% Module start and stop
-export([acquire/4, release/2]).

%% Operators' tools
-export([held/2]).

%% Hot path
-export([pool/3, acquire_on_use/5]).

-type pool_type() :: mongoose_event_pusher_pool_registry:pool_type().
-type tag() :: mongoose_event_pusher_pool_registry:tag().
-type pool_ref() :: mongoose_event_pusher_pool_owner:pool_ref().
%% What acquire_on_use/5 hands to its continuation.
-type acquired() :: {ok, pool_ref()} | {error, term()} | stopped.
-export_type([acquired/0]).

-define(HOLDS(Module, HostType), {?MODULE, Module, HostType}).
%% Slots of a hold.
-define(STATE, 1).
-define(NEXT_TRY, 2).
%% States: the pool is not ours; ours (one user of it); a process is
%% acquiring it; the module stopped.
-define(FREE, 0).
-define(HELD, 1).
-define(ACQUIRING, 2).
-define(STOPPED, 3).
%% A configured pool that failed to start is tried again on use after this long.
-define(ON_USE_RETRY_MS, 1000).

%%--------------------------------------------------------------------
%% Module start and stop
%%--------------------------------------------------------------------

%% @doc Makes Module's hold on the pool Type/Tag for HostType and acquires
%% the pool; returns it and its scope (`global', or the host type of a
%% host-type pool). After an error the hold stays, free: acquire_on_use/5
%% may take the pool later, and release/2 clears it.
-spec acquire(module(), pool_type(), mongooseim:host_type(), tag()) ->
          {ok, pool_ref(), global | mongooseim:host_type()} | {error, term()}.
acquire(Module, Type, HostType, Tag) ->
    Hold = atomics:new(2, [{signed, true}]),
    Holds = persistent_term:get(?HOLDS(Module, HostType), #{}),
    persistent_term:put(?HOLDS(Module, HostType), Holds#{{Type, Tag} => Hold}),
    case mongoose_event_pusher_pool_registry:acquire(Type, HostType, Tag) of
        {ok, Pool, {Type, Scope, Tag}} ->
            atomics:put(Hold, ?STATE, ?HELD),
            {ok, Pool, Scope};
        {error, _} = Error ->
            Error
    end.

%% @doc Releases every pool Module holds on HostType, however it was acquired.
-spec release(module(), mongooseim:host_type()) -> ok.
release(Module, HostType) ->
    Holds = persistent_term:get(?HOLDS(Module, HostType), #{}),
    %% Marked stopped first: an acquire on use finishing after this gives its
    %% pool back instead of keeping it.
    maps:foreach(fun({Type, Tag}, Hold) ->
                         case atomics:exchange(Hold, ?STATE, ?STOPPED) of
                             ?HELD -> mongoose_event_pusher_pool_registry:release(Type, HostType, Tag);
                             _ -> ok
                         end
                 end, Holds),
    _ = persistent_term:erase(?HOLDS(Module, HostType)),
    ok.

%% @doc The pools ({Type, Tag}) that Module on HostType holds now.
-spec held(module(), mongooseim:host_type()) -> [{pool_type(), tag()}].
held(Module, HostType) ->
    Holds = persistent_term:get(?HOLDS(Module, HostType), #{}),
    lists:sort([Key || {Key, Hold} <- maps:to_list(Holds), atomics:get(Hold, ?STATE) =:= ?HELD]).

%%--------------------------------------------------------------------
%% Hot path
%%--------------------------------------------------------------------

%% @doc The pool Type/Tag that HostType's modules hold, or `undefined'.
-spec pool(pool_type(), mongooseim:host_type(), tag()) -> pool_ref() | undefined.
pool(Type, HostType, Tag) ->
    mongoose_event_pusher_pool_registry:lookup(Type, HostType, Tag).

%% @doc For a caller that found no pool (pool/3 gave `undefined'): if
%% Module's hold on it is free and the pool is configured by now (e.g. added
%% after the module started), one caller claims the hold and a new process
%% acquires the pool and calls Then with the result; the caller (a user's
%% process) never waits for a pool to start. Returns false, doing nothing,
%% when the hold is not free, an attempt failed less than a second ago, or
%% the pool is still not configured.
-spec acquire_on_use(module(), pool_type(), mongooseim:host_type(), tag(),
                     fun((acquired()) -> ok)) -> boolean().
acquire_on_use(Module, Type, HostType, Tag, Then) ->
    Hold = maps:get({Type, Tag}, persistent_term:get(?HOLDS(Module, HostType), #{}), undefined),
    case may_acquire(Hold, Type, HostType, Tag)
        andalso atomics:compare_exchange(Hold, ?STATE, ?FREE, ?ACQUIRING) =:= ok of
        true ->
            _ = proc_lib:spawn(fun() -> Then(acquire_held(Hold, Type, HostType, Tag)) end),
            true;
        false ->
            false
    end.

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec may_acquire(atomics:atomics_ref() | undefined, pool_type(), mongooseim:host_type(),
                  tag()) -> boolean().
may_acquire(undefined, _Type, _HostType, _Tag) ->
    false;
may_acquire(Hold, Type, HostType, Tag) ->
    atomics:get(Hold, ?STATE) =:= ?FREE
        andalso now_ms() >= atomics:get(Hold, ?NEXT_TRY)
        andalso element(1, mongoose_event_pusher_pool_registry:pool_key(Type, HostType, Tag)) =:= ok.

%% Runs in its own process; the hold is ?ACQUIRING until it ends.
-spec acquire_held(atomics:atomics_ref(), pool_type(), mongooseim:host_type(), tag()) ->
          acquired().
acquire_held(Hold, Type, HostType, Tag) ->
    Acquired = try mongoose_event_pusher_pool_registry:acquire(Type, HostType, Tag)
               catch Class:Reason -> {error, {Class, Reason}}
               end,
    case Acquired of
        {ok, Pool, _Key} ->
            case atomics:compare_exchange(Hold, ?STATE, ?ACQUIRING, ?HELD) of
                ok ->
                    {ok, Pool};
                _Stopped ->
                    %% The module stopped meanwhile: the pool is not ours to keep.
                    mongoose_event_pusher_pool_registry:release(Type, HostType, Tag),
                    stopped
            end;
        {error, _} = Error ->
            %% A configured pool that fails to start is tried again at most
            %% once per ?ON_USE_RETRY_MS, not for every request.
            atomics:put(Hold, ?NEXT_TRY, now_ms() + ?ON_USE_RETRY_MS),
            _ = atomics:compare_exchange(Hold, ?STATE, ?ACQUIRING, ?FREE),
            Error
    end.

%% Milliseconds since the node started: never negative, unlike monotonic
%% time, so a fresh hold (0) allows an attempt at once.
-spec now_ms() -> non_neg_integer().
now_ms() ->
    erlang:monotonic_time(millisecond)
        - erlang:convert_time_unit(erlang:system_info(start_time), native, millisecond).
