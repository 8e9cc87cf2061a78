%% @doc The test host's `gen_mod_deps': module dependencies as MongooseIM
%% resolves them (its config parser stores the resolved map under
%% `{modules, HostType}') and orders them (mongoose_modules starts
%% dependencies first).
%%
%% A module's `deps(HostType, Opts)' returns `{Module, Opts, Hardness}'
%% tuples (and `{service, S}', ignored here). Opts of a module required
%% several times are merged, later ones winning; an `optional' dependency is
%% kept only if something else brings the module in. In a dependency cycle, a
%% soft or optional edge is dropped; a cycle of hard edges is an error.
-module(gen_mod_deps).

-include_lib("kernel/include/logger.hrl").

-export([add_deps/2, resolve_deps/2, sort_deps/2]).

-type hardness() :: soft | hard | optional.
-type module_opts() :: gen_mod:module_opts().
-type module_dep() :: {module(), module_opts(), hardness()}.
-type module_deps() :: [module_dep()].
-type deps() :: [module_dep() | {service, atom()}].
-type module_list() :: [{module(), module_opts()}].
-type module_map() :: #{module() => module_opts()}.

-export_type([hardness/0, module_list/0, module_map/0, module_deps/0, deps/0]).

%% @doc Resolves and sorts: the modules to start, dependencies first.
-spec add_deps(mongooseim:host_type(), module_map() | module_list()) -> module_list().
add_deps(HostType, Modules) ->
    sort_deps(HostType, resolve_deps(HostType, Modules)).

%% @doc Every module to start with its options: the given ones plus their
%% (transitive) dependencies.
-spec resolve_deps(mongooseim:host_type(), module_map() | module_list()) -> module_map().
resolve_deps(HostType, Modules) when is_map(Modules) ->
    resolve_deps(HostType, lists:sort(maps:to_list(Modules)));
resolve_deps(HostType, Modules) when is_list(Modules) ->
    resolve(HostType, Modules, #{}, #{}).

%% @doc Orders resolved modules so that each comes after its dependencies.
-spec sort_deps(mongooseim:host_type(), module_map()) -> module_list().
sort_deps(HostType, ModuleMap) ->
    Graph = digraph:new([acyclic, private]),
    try
        maps:foreach(fun(Module, Opts) -> add_module(HostType, Module, Opts, Graph) end,
                     ModuleMap),
        [{Module, maps:get(Module, ModuleMap)}
         || Module <- digraph_utils:topsort(Graph), maps:is_key(Module, ModuleMap)]
    after
        digraph:delete(Graph)
    end.

%%--------------------------------------------------------------------
%% Resolving
%%--------------------------------------------------------------------

%% Queue: modules still to look at; Optional: optional deps seen so far,
%% started only if the module turns up as a non-optional dependency too.
-spec resolve(mongooseim:host_type(), [{module(), module_opts()} | module_dep()],
              module_map(), module_map()) -> module_map().
resolve(HostType, [], Optional, Known) ->
    case maps:with(maps:keys(Known), Optional) of
        Wanted when map_size(Wanted) > 0 ->
            resolve(HostType, maps:to_list(Wanted), maps:without(maps:keys(Known), Optional),
                    Known);
        _ ->
            Known
    end;
resolve(HostType, [{Module, Opts, optional} | Queue], Optional, Known) ->
    resolve(HostType, Queue, Optional#{Module => Opts}, Known);
resolve(HostType, [{Module, Opts, _Hard} | Queue], Optional, Known) ->
    resolve(HostType, [{Module, Opts} | Queue], Optional, Known);
resolve(HostType, [{Module, Opts} | Queue], Optional, Known) ->
    case maps:find(Module, Known) of
        {ok, Previous} ->
            case merge_opts(Module, Previous, Opts) of
                Previous -> resolve(HostType, Queue, Optional, Known);
                Merged -> add_resolved(HostType, Module, Merged, Queue, Optional, Known)
            end;
        error ->
            add_resolved(HostType, Module, Opts, Queue, Optional, Known)
    end.

%% Deps are evaluated again with the module's new options.
-spec add_resolved(mongooseim:host_type(), module(), module_opts(), list(), module_map(),
                   module_map()) -> module_map().
add_resolved(HostType, Module, Opts, Queue, Optional, Known) ->
    Deps = gen_mod:get_deps(HostType, Module, Opts),
    resolve(HostType, Deps ++ Queue, Optional, Known#{Module => Opts}).

-spec merge_opts(module(), module_opts(), module_opts()) -> module_opts().
merge_opts(Module, Previous, Opts) ->
    Changed = [#{key => K, old_value => Old, new_value => New}
               || {K, Old} <- maps:to_list(Previous),
                  {ok, New} <- [maps:find(K, Opts)], New =/= Old],
    Changed =:= [] orelse
        ?LOG_WARNING(#{what => overriding_options, module => Module, options => Changed}),
    maps:merge(Previous, Opts).

%%--------------------------------------------------------------------
%% Sorting
%%--------------------------------------------------------------------

-spec add_module(mongooseim:host_type(), module(), module_opts(), digraph:graph()) -> ok.
add_module(HostType, Module, Opts, Graph) ->
    digraph:add_vertex(Graph, Module),
    lists:foreach(fun({Dep, _DepOpts, Hardness}) -> add_dep(Module, Dep, Hardness, Graph) end,
                  gen_mod:get_deps(HostType, Module, Opts)).

%% The edge Dep -> Module makes the dependency sort first.
-spec add_dep(module(), module(), hardness(), digraph:graph()) -> ok.
add_dep(Module, Dep, Hardness, Graph) ->
    digraph:add_vertex(Graph, Dep),
    case digraph:add_edge(Graph, Dep, Module, Hardness) of
        {error, {bad_edge, Cycle}} when Hardness =:= hard ->
            break_cycle_for_hard_edge(Module, Dep, Cycle, Graph);
        {error, {bad_edge, Cycle}} ->
            ?LOG_INFO(#{what => soft_module_dependency_cycle_detected,
                        text => <<"Soft module dependency cycle detected. Dropping edge">>,
                        edge => {Module, Dep}, cyclepath => Cycle}),
            ok;
        _Edge ->
            ok
    end.

-spec break_cycle_for_hard_edge(module(), module(), [digraph:vertex()], digraph:graph()) -> ok.
break_cycle_for_hard_edge(Module, Dep, Cycle, Graph) ->
    case find_soft_edge(Graph, Cycle) of
        false ->
            ?LOG_CRITICAL(#{what => resolving_dependencies_aborted,
                            text => <<"Module dependency cycle found">>, cycle_path => Cycle}),
            error({dependency_cycle, Cycle});
        {Edge, From, To, _Label} ->
            ?LOG_INFO(#{what => soft_module_dependency_cycle_detected,
                        text => <<"Soft module dependency cycle detected. Dropping edge">>,
                        edge => {To, From}, cyclepath => Cycle}),
            digraph:del_edge(Graph, Edge),
            [_ | _] = digraph:add_edge(Graph, Dep, Module, hard),
            ok
    end.

%% An optional edge of the cycle if any, else a soft one.
-spec find_soft_edge(digraph:graph(), [digraph:vertex()]) ->
          {digraph:edge(), digraph:vertex(), digraph:vertex(), digraph:label()} | false.
find_soft_edge(Graph, Cycle) ->
    Pairs = lists:zip(Cycle, tl(Cycle) ++ [hd(Cycle)]),
    Edges = [digraph:edge(Graph, E) || {A, B} <- Pairs, E <- edges_between(Graph, A, B)],
    case lists:keyfind(optional, 4, Edges) of
        false -> lists:keyfind(soft, 4, Edges);
        Edge -> Edge
    end.

-spec edges_between(digraph:graph(), digraph:vertex(), digraph:vertex()) -> [digraph:edge()].
edges_between(Graph, A, B) ->
    [E || E <- digraph:out_edges(Graph, A), lists:member(E, digraph:in_edges(Graph, B))].
