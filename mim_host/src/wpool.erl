%% @doc The test host's `wpool' (worker_pool, which MongooseIM's pools run
%% on): only start_pool/2, as `mongoose_wpool:start_sup_pool/3' calls it. A
%% pool is a supervisor registered under its name with `workers' workers,
%% each running the `worker' module's gen_server callbacks, as worker_pool's
%% wpool_process does.
-module(wpool).

-behaviour(supervisor).

-export([start_pool/2, get_workers/1]).
-export([init/1]).

-spec start_pool(atom(), [{atom(), term()}]) -> {ok, pid()} | {error, term()}.
start_pool(Name, Opts) ->
    supervisor:start_link({local, Name}, ?MODULE, {Name, maps:from_list(Opts)}).

%% @doc The workers' registered names.
-spec get_workers(atom()) -> [atom()].
get_workers(Name) ->
    [Id || {Id, _, _, _} <- supervisor:which_children(Name)].

-spec init({atom(), map()}) -> {ok, {supervisor:sup_flags(), [supervisor:child_spec()]}}.
init({Name, #{worker := {Module, Args}} = Opts}) ->
    Workers = [worker_name(Name, I) || I <- lists:seq(1, maps:get(workers, Opts, 100))],
    {ok, {#{strategy => one_for_one, intensity => 5, period => 60},
          [#{id => Worker,
             start => {gen_server, start_link, [{local, Worker}, Module, Args, []]},
             restart => permanent, shutdown => 5000, type => worker,
             modules => [Module]} || Worker <- Workers]}}.

%% worker_pool's names: `<Pool>-<N>'.
-spec worker_name(atom(), pos_integer()) -> atom().
worker_name(Name, I) ->
    list_to_atom(atom_to_list(Name) ++ [$- | integer_to_list(I)]).
