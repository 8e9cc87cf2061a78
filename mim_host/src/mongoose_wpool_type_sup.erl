%% @doc The test host's `mongoose_wpool_type_sup': the supervisor of one pool
%% type's worker_pool pools (`mongoose_wpool_<Type>_sup', under the host's
%% supervisor), where `mongoose_wpool:start_sup_pool/3' puts them, as in
%% MongooseIM. A pool's start may start children of ejabberd_sup itself (our
%% pool registry), so pools cannot be ejabberd_sup's own children.
-module(mongoose_wpool_type_sup).

-behaviour(supervisor).

-export([ensure_started/1, name/1]).
-export([start_link/1, init/1]).

-spec ensure_started(mongoose_wpool:pool_type()) -> ok.
ensure_started(Type) ->
    case whereis(name(Type)) of
        undefined ->
            Spec = #{id => name(Type), start => {?MODULE, start_link, [Type]},
                     restart => permanent, shutdown => infinity, type => supervisor,
                     modules => [?MODULE]},
            case supervisor:start_child(ejabberd_sup, Spec) of
                {ok, _} -> ok;
                {error, {already_started, _}} -> ok;
                {error, already_present} ->
                    {ok, _} = supervisor:restart_child(ejabberd_sup, name(Type)),
                    ok
            end;
        _ ->
            ok
    end.

-spec name(mongoose_wpool:pool_type()) -> atom().
name(Type) ->
    list_to_atom("mongoose_wpool_" ++ atom_to_list(Type) ++ "_sup").

-spec start_link(mongoose_wpool:pool_type()) -> {ok, pid()} | {error, term()}.
start_link(Type) ->
    supervisor:start_link({local, name(Type)}, ?MODULE, []).

-spec init([]) -> {ok, {supervisor:sup_flags(), []}}.
init([]) ->
    {ok, {#{strategy => one_for_one, intensity => 100, period => 5}, []}}.
