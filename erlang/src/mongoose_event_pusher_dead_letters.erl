%% @doc Dead letters (ours, doc/compatibility.md §9): events that failed for
%% good (a final 4xx, retries exhausted, too old) are kept by their pool with
%% the last error, the attempts and the time, and can be listed, replayed
%% (same event ID, fresh attempts) or purged, per host type and backend.
%%
%% For operators, e.g. from `mongooseimctl debug' or an rpc:
%%   mongoose_event_pusher_dead_letters:count(<<"localhost">>, http).
%%   mongoose_event_pusher_dead_letters:list(<<"localhost">>, rabbit).
%%   mongoose_event_pusher_dead_letters:replay(<<"localhost">>, http, all).
%%   mongoose_event_pusher_dead_letters:replay(<<"localhost">>, sns, [Id]).
%%   mongoose_event_pusher_dead_letters:purge(<<"localhost">>, http, all).
%%
%% A pool shared by several host types (e.g. a global rabbit pool) keeps one
%% store; a letter belongs to the host type its event came from, and a
%% letter whose pool does not record the host type (a global rabbit pool)
%% belongs to every host type using that pool. Each replay and purge is
%% logged; the counts are in the pool's stats (`dead_letters',
%% `dead_lettered', `dead_letters_evicted', `dead_letters_replayed',
%% `dead_letters_purged').
%%
%% A pool with a spool keeps its letters on disk too: they are listed again
%% after a restart or a crash, and a replay goes through the spool
%% (doc/durability.md, "Dead letters on disk").
-module(mongoose_event_pusher_dead_letters).

-export([count/2, list/2, list/3, replay/3, purge/3]).
-export_type([backend/0, letter/0]).

-include_lib("kernel/include/logger.hrl").

-type backend() :: http | rabbit | sns | mongoosepush.
-type letter() :: #{id := mongoose_event_pusher_event_id:id(),
                    backend := backend(),
                    pool := atom(),
                    reason := binary(),
                    attempts := non_neg_integer(),
                    failed_at := non_neg_integer(),
                    target := binary(),
                    size := non_neg_integer()}.
-type select() :: all | [mongoose_event_pusher_event_id:id()].

%% Letters one call looks at in a pool; a store holds 10,000 by default.
-define(ALL, 1000000).
-define(DEFAULT_LIST, 100).

-spec count(mongooseim:host_type(), backend()) -> non_neg_integer().
count(HostType, Backend) ->
    length(letters(HostType, Backend, ?ALL)).

%% @doc The oldest 100 letters.
-spec list(mongooseim:host_type(), backend()) -> [letter()].
list(HostType, Backend) ->
    list(HostType, Backend, ?DEFAULT_LIST).

-spec list(mongooseim:host_type(), backend(), non_neg_integer()) -> [letter()].
list(HostType, Backend, Limit) when is_integer(Limit), Limit >= 0 ->
    [public(Letter) || Letter <- lists:sublist(letters(HostType, Backend, ?ALL), Limit)].

%% @doc Queues the selected letters again, oldest first, while their pool's
%% queue takes them (the rest stay). Returns how many were queued.
-spec replay(mongooseim:host_type(), backend(), select()) -> {ok, non_neg_integer()}.
replay(HostType, Backend, Select) ->
    act(replay, HostType, Backend, Select).

%% @doc Removes the selected letters. Returns how many.
-spec purge(mongooseim:host_type(), backend(), select()) -> {ok, non_neg_integer()}.
purge(HostType, Backend, Select) ->
    act(purge, HostType, Backend, Select).

%%--------------------------------------------------------------------
%% Helpers
%%--------------------------------------------------------------------

-spec act(replay | purge, mongooseim:host_type(), backend(), select()) ->
          {ok, non_neg_integer()}.
act(Op, HostType, Backend, Select) when Select =:= all; is_list(Select) ->
    Count = lists:sum([act_on_pool(Op, Pool, ids(HostType, Backend, PoolName, Pool, Select))
                       || {PoolName, Pool} <- pools(HostType, Backend)]),
    ?LOG_NOTICE(#{what => event_pusher_dead_letters, action => Op, host_type => HostType,
                  backend => Backend, selected => selection(Select), count => Count}),
    {ok, Count}.

-spec act_on_pool(replay | purge, mongoose_event_pusher_pool_owner:pool_ref(),
                  [mongoose_event_pusher_event_id:id()]) -> non_neg_integer().
act_on_pool(_Op, _Pool, []) ->
    0;
act_on_pool(Op, Pool, Ids) ->
    mongoose_event_pusher_nif:dead_letters(Pool, Op, Ids).

%% The IDs of the host type's letters in the pool that Select picks.
-spec ids(mongooseim:host_type(), backend(), atom(),
          mongoose_event_pusher_pool_owner:pool_ref(), select()) ->
          [mongoose_event_pusher_event_id:id()].
ids(HostType, Backend, PoolName, Pool, Select) ->
    Mine = [Id || #{id := Id} <- pool_letters(HostType, Backend, PoolName, Pool, ?ALL)],
    case Select of
        all -> Mine;
        Ids -> [Id || Id <- Mine, lists:member(Id, Ids)]
    end.

-spec letters(mongooseim:host_type(), backend(), non_neg_integer()) -> [map()].
letters(HostType, Backend, Limit) ->
    lists:append([pool_letters(HostType, Backend, PoolName, Pool, Limit)
                  || {PoolName, Pool} <- pools(HostType, Backend)]).

-spec pool_letters(mongooseim:host_type(), backend(), atom(),
                   mongoose_event_pusher_pool_owner:pool_ref(), non_neg_integer()) -> [map()].
pool_letters(HostType, Backend, PoolName, Pool, Limit) ->
    [Letter#{backend => Backend, pool => PoolName}
     || Letter = #{tag := Tag} <- mongoose_event_pusher_nif:dead_letters(Pool, list, Limit),
        belongs_to(HostType, Tag)].

%% Whether a letter's event came from HostType, by its tag ({Module, Ctx},
%% each backend's own context).
-spec belongs_to(mongooseim:host_type(), term()) -> boolean().
belongs_to(HostType, {mod_event_pusher_rabbit, {Scope, _PoolTag}}) ->
    Scope =:= global orelse Scope =:= HostType;
belongs_to(HostType, {mod_event_pusher_sns, #{host_type := Owner}}) ->
    Owner =:= HostType;
belongs_to(HostType, {Module, Ctx}) when Module =:= mod_event_pusher_http;
                                         Module =:= mod_push_service_mongoosepush ->
    %% Both keep the host type first in their #ctx{} record.
    is_tuple(Ctx) andalso tuple_size(Ctx) >= 2 andalso element(2, Ctx) =:= HostType;
belongs_to(_HostType, _Tag) ->
    false.

%% The backend's pools that HostType uses: {PoolName, Pool}.
-spec pools(mongooseim:host_type(), backend()) ->
          [{atom(), mongoose_event_pusher_pool_owner:pool_ref()}].
pools(HostType, Backend) ->
    [{Tag, Pool} || {Type, Tag} <- pool_keys(HostType, Backend),
                    Pool <- [mongoose_event_pusher_pool_hold:pool(Type, HostType, Tag)],
                    Pool =/= undefined].

-spec pool_keys(mongooseim:host_type(), backend()) -> [{atom(), atom()}].
pool_keys(HostType, mongoosepush) ->
    %% MongoosePush holds no pool of its own: it uses the http pool it names.
    case gen_mod:is_loaded(HostType, mod_push_service_mongoosepush) of
        true -> [{http, gen_mod:get_module_opt(HostType, mod_push_service_mongoosepush, pool_name)}];
        false -> []
    end;
pool_keys(HostType, Backend) when Backend =:= http; Backend =:= rabbit; Backend =:= sns ->
    mongoose_event_pusher_pool_hold:held(module(Backend), HostType).

-spec module(http | rabbit | sns) -> module().
module(http) -> mod_event_pusher_http;
module(rabbit) -> mod_event_pusher_rabbit;
module(sns) -> mod_event_pusher_sns.

%% A letter without its tag (an internal term).
-spec public(map()) -> letter().
public(Letter) ->
    maps:remove(tag, Letter).

-spec selection(select()) -> all | non_neg_integer().
selection(all) -> all;
selection(Ids) -> length(Ids).
