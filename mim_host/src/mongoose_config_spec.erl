%% @doc Test host: MongooseIM's config spec, emulated where our modules meet it.
%%
%% Every top-level section and `general' key of MongooseIM 6.8 is accepted;
%% any other key is rejected, naming its path. Emulated with MongooseIM's
%% processing and defaults: `general', `internal_databases', `outgoing_pools'
%% (types `http', `rabbit' and `rdbms' fully, with the client TLS section; the other
%% types with their generic worker pool options and an unvalidated
%% connection), `modules' (modules loadable here, with their config_spec/0),
%% `shaper', `acl', `access' and `[[host_config]]'. Accepted with light
%% checks and left out of the processed options (mongoose_config_spec_unemulated):
%% `listen', `auth', `services', `instrumentation', `s2s',
%% `general.routing_modules', and sections of MongooseIM modules that are not
%% loadable here (logged as `module_not_emulated', never started). So the
%% checks that need those parts are not made: shapers referenced by listeners,
%% auth methods with dynamic domains.
%%
%% Paths in comments: dotted TOML keys, `[]' a list element, `(...)' an
%% optional prefix, `*' any name.
-module(mongoose_config_spec).

%% the whole spec
-export([root/0]).

%% parts used by module specs
-export([wpool/1,
         iqdisc/0,
         tls/1]).

%% called by mongoose_config_parser on the complete options
-export([validate_backend_databases/1]).

%% callbacks of the `process' steps
-export([process_dynamic_domains/1,
         process_host/1,
         process_general/1,
         process_pool/2,
         process_host_config_pool/2,
         process_iqdisc/1,
         process_tls/1,
         process_rdbms_connection/1,
         process_acl_condition/1,
         module_spec/1]).

-include("mongoose_config_spec.hrl").

-type config_node() :: config_section() | config_list() | config_option().
-type config_section() :: #section{}.
-type config_list() :: #list{}.
-type config_option() :: #option{}.

%% `toml' (ours): any TOML value, kept as decoded (unemulated parts only)
-type option_type() :: boolean | binary | string | atom | int_or_infinity
                     | int_or_atom | integer | float | toml.

%% How a processed node joins its parent:
%%   global_config - a top-level option `{Key, Value}' (not allowed in host_config)
%%   host_config   - a top-level option `{{Key, HostType}, Value}', `global' outside
%%                   host_config (then repeated for every host type)
%%   default       - `{Key, Value}' in a section, `Value' in a list
%%   item          - `Value'
%%   remove        - nothing
%%   none          - the items of the value, spliced into the parent
-type wrapper() :: global_config | host_config | default | item | remove | none.

%% `map' turns the processed `{Key, Value}' items into a map, `list' keeps them
-type format_items() :: list | map.

-export_type([config_node/0, config_section/0, config_list/0, config_option/0,
              wrapper/0, format_items/0, option_type/0]).

%% path: (root)
-spec root() -> config_section().
root() ->
    General = general(),
    Modules = modules(),
    Unemulated = [{Key, mongoose_config_spec_unemulated:Key()}
                  || Key <- [listen, auth, services, instrumentation, s2s]],
    Own = [{general, General#section{required = [<<"default_server_domain">>],
                                     process = fun ?MODULE:process_general/1,
                                     defaults = general_defaults()}},
           {outgoing_pools, outgoing_pools(global_config)},
           {internal_databases, internal_databases()},
           {modules, Modules#section{include = always}},
           {shaper, shaper()},
           {acl, acl()},
           {access, access()},
           {host_config, #list{items = host_config(), wrap = none}}],
    #section{items = maps:from_list([{atom_to_binary(Key, utf8), Spec}
                                     || {Key, Spec} <- Unemulated ++ Own]),
             defaults = #{<<"internal_databases">> => #{mnesia => #{}}},
             required = [<<"general">>],
             process = fun ?MODULE:process_dynamic_domains/1,
             wrap = none,
             format_items = list}.

%% path: host_config[]
%% `host_type' (or its old synonym `host') goes into the path of the element
%% and is then dropped; the other sections apply to that host type only, and
%% only their options wrapped with `host_config' are accepted there.
host_config() ->
    HostKey = (text())#option{wrap = remove},
    PerHost = [{general, general()},
               {auth, mongoose_config_spec_unemulated:auth()},
               {modules, modules()},
               {outgoing_pools, outgoing_pools(host_config)},
               {acl, acl()},
               {access, access()},
               {s2s, mongoose_config_spec_unemulated:s2s()}],
    section([{<<"host">>, HostKey}, {<<"host_type">>, HostKey}
             | [{atom_to_binary(Key, utf8), Spec} || {Key, Spec} <- PerHost]],
            #section{wrap = none, format_items = list}).

%% path: general
general() ->
    #section{items = maps:from_list([{Key, scoped(Scope, Spec)}
                                     || {Key, Scope, Spec, _Default} <- general_options()]),
             wrap = none,
             format_items = list}.

general_defaults() ->
    maps:from_list([{Key, Default} || {Key, _Scope, _Spec, Default} <- general_options(),
                                      Default =/= no_default]).

%% Each `[general]' option: where it may be set (`global': top level only,
%% `host': also per host type, `own': the spec decides), its spec and its
%% default.
general_options() ->
    Domain = (text())#option{process = fun ?MODULE:process_host/1},
    %% MongooseIM checks that the backend module exists; these are the
    %% backends of MongooseIM 6.8
    [{<<"loglevel">>, global, #option{type = atom, validate = loglevel}, warning},
     {<<"hosts">>, global, #list{items = Domain, validate = unique}, []},
     {<<"host_types">>, global, #list{items = text(), validate = unique}, []},
     {<<"default_server_domain">>, global, Domain, no_default},
     {<<"registration_timeout">>, global,
      #option{type = int_or_infinity, validate = positive}, 600},
     {<<"language">>, global, text(), <<"en">>},
     {<<"sm_backend">>, global, enum([mnesia, cets, redis]), mnesia},
     {<<"component_backend">>, global, enum([mnesia, cets]), mnesia},
     {<<"s2s_backend">>, global, enum([mnesia, cets]), mnesia},
     {<<"http_server_name">>, global, #option{type = string}, no_default},
     {<<"route_subdomains">>, host, enum([s2s]), no_default},
     {<<"routing_modules">>, own, mongoose_config_spec_unemulated:routing_modules(), no_default},
     {<<"replaced_wait_timeout">>, host, #option{type = integer, validate = positive}, 2000},
     {<<"hide_service_name">>, global, #option{type = boolean}, false}].

scoped(global, Spec) -> with_wrap(Spec, global_config);
scoped(host, Spec) -> with_wrap(Spec, host_config);
scoped(own, Spec) -> Spec.

with_wrap(#option{} = Option, Wrap) -> Option#option{wrap = Wrap};
with_wrap(#list{} = List, Wrap) -> List#list{wrap = Wrap}.

%% path: internal_databases
internal_databases() ->
    #section{items = #{<<"cets">> => internal_database_cets(),
                       <<"mnesia">> => #section{}},
             format_items = map,
             wrap = global_config}.

%% path: internal_databases.cets
internal_database_cets() ->
    section([{<<"backend">>, enum([file, rdbms]), rdbms},
             {<<"cluster_name">>, #option{type = atom, validate = non_empty}, mongooseim},
             {<<"node_list_file">>, #option{type = string, validate = filename}}],
            #section{}).

%% path: (host_config[].)modules
%% A key is a module on the code path, whose options are checked by the spec
%% it returns from config_spec/0 (none: no options allowed), or a MongooseIM
%% module not loadable here, accepted and left out.
modules() ->
    #section{items = #{default => fun ?MODULE:module_spec/1},
             validate_keys = mongooseim_module,
             wrap = host_config}.

%% @doc The spec of `[modules.Name]': Name:config_spec() if exported, else an
%% empty section. MongooseIM lists its modules statically; the test host asks
%% the module, which validate_keys has already loaded.
-spec module_spec(binary()) -> config_section().
module_spec(Name) ->
    Module = binary_to_atom(Name, utf8),
    case code:ensure_loaded(Module) of
        {module, Module} ->
            case erlang:function_exported(Module, config_spec, 0) of
                true -> Module:config_spec();
                false -> #section{}
            end;
        Other ->
            case mongoose_config_spec_unemulated:is_mongooseim_module(Module) of
                true -> mongoose_config_spec_unemulated:module();
                false -> error(#{what => module_not_found, module => Module, reason => Other})
            end
    end.

%% path: (host_config[].)modules.*.iqdisc
-spec iqdisc() -> config_section().
iqdisc() ->
    section([{<<"type">>, enum([no_queue, one_queue, parallel, queues])},
             {<<"workers">>, int(positive)}],
            #section{required = [<<"type">>], process = fun ?MODULE:process_iqdisc/1}).

-spec process_iqdisc(#{type := atom(), workers => pos_integer()}) ->
          atom() | {queues, pos_integer()}.
process_iqdisc(#{type := queues, workers := N}) -> {queues, N};
process_iqdisc(#{type := Type, workers := _}) ->
    error(#{what => iqdisc_workers_without_queues, type => Type,
            text => <<"iqdisc.workers goes with type = queues only">>});
process_iqdisc(#{type := Type}) -> Type.

%% path: outgoing_pools, host_config[].outgoing_pools
%% The connections of `http', `rabbit' and `rdbms' pools are emulated; those of other
%% types are kept unvalidated (our product ignores those pools).
outgoing_pools(Scope) ->
    PoolsOfType = fun(Type) ->
                          #section{items = #{default => outgoing_pool(Scope, Type)},
                                   validate_keys = non_empty,
                                   wrap = none,
                                   format_items = list}
                  end,
    Types = [<<"cassandra">>, <<"elastic">>, <<"http">>, <<"ldap">>,
             <<"rabbit">>, <<"rdbms">>, <<"redis">>],
    #section{items = maps:from_list([{Type, PoolsOfType(Type)} || Type <- Types]),
             format_items = list,
             wrap = Scope,
             include = pools_include(Scope)}.

%% Global pools are processed even when absent (as an empty table).
pools_include(global_config) -> always;
pools_include(host_config) -> when_present.

%% path: (host_config[].)outgoing_pools.*.*
outgoing_pool(Scope, Type) ->
    Pool = mongoose_config_utils:merge_sections(wpool(extra_wpool_defaults(Type)),
                                                outgoing_pool_extra(Scope, Type)),
    Pool#section{wrap = item}.

extra_wpool_defaults(Type) ->
    Changed = [{<<"cassandra">>, #{<<"workers">> => 20}},
               {<<"rdbms">>, #{<<"call_timeout">> => 60000}}],
    proplists:get_value(Type, Changed, #{}).

%% @doc The generic worker pool options, with extra or changed defaults.
-spec wpool(#{binary() => term()}) -> config_section().
wpool(ExtraDefaults) ->
    Generic = section([{<<"workers">>, int(positive), 10},
                       {<<"strategy">>, enum(wpool_strategies()), best_worker},
                       {<<"call_timeout">>, int(positive), 5000},
                       {<<"max_worker_queue_len">>, int(non_negative)}],
                      #section{}),
    Generic#section{defaults = maps:merge(Generic#section.defaults, ExtraDefaults)}.

wpool_strategies() ->
    [best_worker, random_worker, next_worker, available_worker, next_available_worker].

%% A pool in host_config belongs to that host type and takes no `scope'.
%% An rdbms pool cannot do without its connection (driver, database).
outgoing_pool_extra(host_config, Type) ->
    #section{items = #{<<"connection">> => outgoing_pool_connection(Type)},
             required = required_pool_keys(Type),
             process = fun ?MODULE:process_host_config_pool/2};
outgoing_pool_extra(global_config, Type) ->
    section([{<<"scope">>, enum([global, host_type, host]), global},
             {<<"connection">>, outgoing_pool_connection(Type)}],
            #section{required = required_pool_keys(Type),
                     process = fun ?MODULE:process_pool/2}).

required_pool_keys(<<"rdbms">>) -> [<<"connection">>];
required_pool_keys(_) -> [].

%% path: (host_config[].)outgoing_pools.*.*.connection
outgoing_pool_connection(<<"http">>) ->
    section([{<<"host">>, #option{type = string, validate = non_empty}},
             {<<"path_prefix">>, text(), <<"/">>},
             {<<"request_timeout">>, int(non_negative), 2000},
             {<<"tls">>, tls([client])}],
            #section{include = always, required = [<<"host">>]});
outgoing_pool_connection(<<"rabbit">>) ->
    section([{<<"host">>, #option{type = string, validate = non_empty}, "localhost"},
             {<<"port">>, int(port), 5672},
             {<<"username">>, text(), <<"guest">>},
             {<<"password">>, text(), <<"guest">>},
             {<<"virtual_host">>, text(), <<"/">>},
             {<<"confirms_enabled">>, #option{type = boolean}, false},
             {<<"tls">>, tls([client])},
             {<<"reconnect">>, rabbit_reconnect()}],
            #section{include = always});
outgoing_pool_connection(<<"rdbms">>) ->
    NonEmpty = #option{type = string, validate = non_empty},
    section([{<<"driver">>, enum([pgsql, mysql, cockroachdb])},
             {<<"keepalive_interval">>, int(positive)},
             {<<"query_timeout">>, int(non_negative), 5000},
             {<<"max_start_interval">>, int(positive), 30},
             {<<"host">>, NonEmpty},
             {<<"database">>, NonEmpty},
             {<<"username">>, NonEmpty},
             {<<"password">>, NonEmpty},
             {<<"port">>, int(port)},
             {<<"tls">>, sql_tls()}],
            #section{required = [<<"driver">>],
                     process = fun ?MODULE:process_rdbms_connection/1});
outgoing_pool_connection(_Other) ->
    mongoose_config_spec_unemulated:pool_connection().

%% path: (host_config[].)outgoing_pools.rdbms.*.connection.tls
sql_tls() ->
    mongoose_config_utils:merge_sections(tls([client]),
                                         section([{<<"required">>, #option{type = boolean}}],
                                                 #section{})).

%% path: (host_config[].)outgoing_pools.rabbit.*.connection.reconnect
%% (delay in ms)
rabbit_reconnect() ->
    section([{<<"attempts">>, int(non_negative), 0},
             {<<"delay">>, int(non_negative), 2000}],
            #section{include = always}).

%% @doc A TLS section: the common options plus those of each entity
%% (`client', `server', `xmpp', `xmpp_tls').
-spec tls([client | server | xmpp | xmpp_tls]) -> config_section().
tls(Entities) when is_list(Entities) ->
    lists:foldl(fun(Entity, Acc) ->
                        mongoose_config_utils:merge_sections(Acc, tls_part(Entity))
                end, tls_part(common), Entities).

tls_part(common) ->
    File = #option{type = string, validate = filename},
    section([{<<"verify_mode">>, enum([peer, selfsigned_peer, none]), peer},
             {<<"certfile">>, File},
             {<<"cacertfile">>, File},
             {<<"keyfile">>, File},
             {<<"ciphers">>, #option{type = string}},
             {<<"password">>, #option{type = string}},
             {<<"versions">>, #list{items = #option{type = atom}}},
             {<<"disconnect_on_failure">>, #option{type = boolean}, true},
             {<<"crl_files">>, #list{items = File}, []}],
            #section{process = fun ?MODULE:process_tls/1});
tls_part(client) ->
    section([{<<"server_name_indication">>, server_name_indication()}], #section{});
tls_part(server) ->
    section([{<<"dhfile">>, #option{type = string, validate = filename}},
             {<<"early_data">>, #option{type = boolean}},
             {<<"session_tickets">>, enum([stateless])}],
            #section{});
tls_part(xmpp) ->
    xmpp_tls_mode(starttls);
tls_part(xmpp_tls) ->
    xmpp_tls_mode(tls).

xmpp_tls_mode(DefaultMode) ->
    section([{<<"mode">>, enum([tls, starttls, starttls_required]), DefaultMode},
             {<<"keep_secrets">>, #option{type = boolean}, false}],
            #section{}).

%% path: ...tls.server_name_indication
server_name_indication() ->
    section([{<<"enabled">>, #option{type = boolean}, true},
             {<<"host">>, #option{type = string, validate = non_empty}},
             {<<"protocol">>, enum([default, https]), default}],
            #section{include = always}).

%% path: shaper
shaper() ->
    MaxRate = #option{type = integer, validate = positive},
    #section{items = #{default => #section{items = #{<<"max_rate">> => MaxRate},
                                           required = all}},
             validate_keys = non_empty,
             wrap = global_config}.

%% path: (host_config[].)acl
acl() ->
    named_lists(acl_item()).

%% path: (host_config[].)acl.*[]
acl_item() ->
    Condition = #option{type = binary, process = fun ?MODULE:process_acl_condition/1},
    Conditions = [<<"user">>, <<"server">>, <<"resource">>,
                  <<"user_regexp">>, <<"server_regexp">>, <<"resource_regexp">>,
                  <<"user_glob">>, <<"server_glob">>, <<"resource_glob">>],
    Match = #option{type = atom,
                    validate = {enum, [all, none, current_domain, any_hosted_domain]}},
    #section{items = maps:from_list([{<<"match">>, Match} | [{C, Condition} || C <- Conditions]]),
             defaults = #{<<"match">> => current_domain}}.

%% path: (host_config[].)access
access() ->
    named_lists(access_rule_item()).

%% Any key names a list of items of the given spec.
named_lists(ItemSpec) ->
    #section{items = #{default => #list{items = ItemSpec}}, wrap = host_config}.

%% path: (host_config[].)access.*[]
access_rule_item() ->
    section([{<<"acl">>, #option{type = atom, validate = non_empty}},
             {<<"value">>, #option{type = int_or_atom}}],
            #section{required = all}).

%% Spec building blocks

%% A section from rows `{Key, Spec}' or `{Key, Spec, Default}'; Base gives
%% the section's other fields.
-spec section([{binary(), config_node()} | {binary(), config_node(), term()}],
              config_section()) -> config_section().
section(Rows, Base) ->
    Base#section{items = maps:from_list([{element(1, Row), element(2, Row)} || Row <- Rows]),
                 defaults = maps:from_list([{Key, Default} || {Key, _Spec, Default} <- Rows])}.

text() -> #option{type = binary, validate = non_empty}.

int(Validator) -> #option{type = integer, validate = Validator}.

enum(Values) -> #option{type = atom, validate = {enum, Values}}.

%% Process callbacks

%% @doc With dynamic domains (any `host_types'), every module configured
%% globally or for a host type must list `dynamic_domains' in its
%% supported_features/0. (The test host does not process `auth', so no auth
%% methods are checked; MongooseIM modules not loadable here are already left
%% out.)
-spec process_dynamic_domains([{mongoose_config:key(), term()}]) ->
          [{mongoose_config:key(), term()}].
process_dynamic_domains(Items) ->
    case proplists:get_value(host_types, Items, []) of
        [] ->
            Items;
        HostTypes ->
            Modules = lists:usort([M || {{modules, HT}, Mods} <- Items,
                                        HT =:= global orelse lists:member(HT, HostTypes),
                                        M <- maps:keys(Mods)]),
            case [M || M <- Modules, not supports_dynamic_domains(M)] of
                [] ->
                    Items;
                Unsupported ->
                    error(#{what => dynamic_domains_not_supported,
                            text => "With host_types, every module must support dynamic domains",
                            unsupported_auth_methods => [],
                            unsupported_modules => Unsupported})
            end
    end.

supports_dynamic_domains(Module) ->
    erlang:function_exported(Module, supported_features, 0)
        andalso lists:member(dynamic_domains, Module:supported_features()).

%% @doc A host name as MongooseIM stores it (nodeprep'd: lowercase).
-spec process_host(binary()) -> binary().
process_host(Host) ->
    nodeprepped(Host, #{what => invalid_host_name, host => Host}).

%% @doc Hosts and host types together: unique, and at least one.
-spec process_general([{atom(), term()}]) -> [{atom(), term()}].
process_general(General) ->
    All = lists:append([V || {K, V} <- General, K =:= hosts orelse K =:= host_types]),
    case All of
        [] -> error(#{what => no_hosts_or_host_types,
                      text => <<"Set general.hosts or general.host_types">>});
        _ -> ok
    end,
    case All -- lists:usort(All) of
        [] -> General;
        Dups -> error(#{what => duplicate_hosts_or_host_types, duplicates => Dups})
    end.

%% @doc A global pool: `#{type, scope, tag, opts, conn_opts}'.
-spec process_pool(mongoose_config_parser_toml:path(), map()) -> map().
process_pool([Tag, Type | _], #{scope := Scope, connection := ConnOpts} = AllOpts) ->
    pool_entry(Type, pool_scope(Scope), Tag, maps:without([scope, host, connection], AllOpts),
               ConnOpts).

%% @doc A pool of host_config: its scope is the host type.
-spec process_host_config_pool(mongoose_config_parser_toml:path(), map()) -> map().
process_host_config_pool([Tag, Type, _Pools, {host, HostType} | _],
                         #{connection := ConnOpts} = AllOpts) ->
    pool_entry(Type, HostType, Tag, maps:without([connection], AllOpts), ConnOpts).

pool_entry(Type, Scope, Tag, WpoolOpts, ConnOpts) ->
    #{type => b2a(Type), tag => b2a(Tag), scope => Scope,
      opts => verify_pool_strategy(WpoolOpts), conn_opts => ConnOpts}.

%% `host' is MongooseIM's deprecated name of `host_type'
pool_scope(global) -> global;
pool_scope(Scope) when Scope =:= host; Scope =:= host_type -> host_type.

%% A worker queue limit only works with the best_worker strategy.
verify_pool_strategy(#{max_worker_queue_len := _} = Opts) ->
    case Opts of
        #{strategy := best_worker} -> Opts;
        #{strategy := _} -> error(#{what => invalid_worker_pool_strategy_option,
                                    text => <<"max_worker_queue_len requires strategy = best_worker">>,
                                    pool_options => Opts});
        #{} -> Opts
    end;
verify_pool_strategy(Opts) ->
    Opts.

%% @doc An ACL condition (user, server, resource or a pattern of one) is
%% nodeprep'd, as MongooseIM stores it.
-spec process_acl_condition(binary()) -> binary().
process_acl_condition(Value) ->
    nodeprepped(Value, #{what => incorrect_acl_condition_value,
                         text => <<"Not a valid JID node part">>}).

nodeprepped(Value, ErrorInfo) ->
    case jid:nodeprep(Value) of
        error -> error(ErrorInfo);
        Prepped -> Prepped
    end.

%% @doc A TLS certfile needs a separate keyfile (OTP 28.1+ refuses a
%% certificate and key concatenated in one file).
-spec process_tls(map()) -> map().
process_tls(Opts = #{certfile := CertFile}) when not is_map_key(keyfile, Opts) ->
    error(#{what => tls_certfile_without_keyfile,
            text => <<"TLS certfile needs a keyfile (a separate file)">>,
            certfile => CertFile});
process_tls(Opts) ->
    Opts.

%% @doc An rdbms connection as MongooseIM's `mongoose_rdbms:process_options/1'
%% makes it: `host', `database', `username' and `password' are required
%% (every driver has them); the port defaults by driver; `tls.required'
%% defaults to false (pgsql, cockroachdb) and is refused for mysql.
-spec process_rdbms_connection(map()) -> map().
process_rdbms_connection(Opts) ->
    case [K || K <- [host, database, username, password], not maps:is_key(K, Opts)] of
        [] ->
            rdbms_default_port(rdbms_tls(Opts));
        Missing ->
            error(#{what => invalid_rdbms_connection_options,
                    text => <<"An rdbms connection needs host, database, username and password">>,
                    missing_keys => Missing})
    end.

rdbms_tls(#{driver := mysql, tls := #{required := _}}) ->
    error(#{what => invalid_rdbms_tls_options,
            text => <<"The 'required' option is not supported for MySQL">>});
rdbms_tls(#{driver := Driver, tls := TLS} = Opts) when Driver =:= pgsql;
                                                     Driver =:= cockroachdb ->
    Opts#{tls := maps:merge(#{required => false}, TLS)};
rdbms_tls(Opts) ->
    Opts.

rdbms_default_port(#{port := _} = Opts) -> Opts;
rdbms_default_port(#{driver := pgsql} = Opts) -> Opts#{port => 5432};
rdbms_default_port(#{driver := cockroachdb} = Opts) -> Opts#{port => 26257};
rdbms_default_port(#{driver := mysql} = Opts) -> Opts#{port => 3306}.

%% Post-processing

%% @doc The general backends (sm, component, s2s) that keep their data in an
%% internal database need it in `internal_databases', as in MongooseIM. (The
%% test host has no modules, services or auth methods with such backends.)
-spec validate_backend_databases([{mongoose_config:key(), mongoose_config:value()}]) -> ok.
validate_backend_databases(Opts) ->
    Configured = maps:keys(proplists:get_value(internal_databases, Opts, #{})),
    Disabled = [cets, mnesia] -- Configured,
    Missing = [#{source => general, option => Key, backend => Backend, host_type => global}
               || {Key, Backend} <- Opts,
                  lists:member(Key, [sm_backend, component_backend, s2s_backend]),
                  lists:member(Backend, Disabled)],
    case Missing of
        [] ->
            ok;
        _ ->
            error({config_error, "Some backends require internal databases that are not configured",
                   [#{class => error,
                      what => backend_requires_internal_database,
                      reason => backend_requires_internal_database,
                      text => "Add the required databases to the 'internal_databases' section.",
                      missing => Missing}]})
    end.

b2a(B) -> binary_to_atom(B, utf8).
