%% @doc Test host: MongooseIM's config spec, emulated where our modules meet it.
%%
%% Every top-level section and `general' key of MongooseIM 6.8 is accepted;
%% any other key is rejected, naming its path. Emulated with MongooseIM's
%% processing and defaults: `general', `internal_databases', `outgoing_pools'
%% (types `http' and `rabbit' fully, with the client TLS section; the other
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
    #section{
       items = #{<<"general">> => General#section{required = [<<"default_server_domain">>],
                                                  process = fun ?MODULE:process_general/1,
                                                  defaults = general_defaults()},
                 <<"listen">> => mongoose_config_spec_unemulated:listen(),
                 <<"auth">> => mongoose_config_spec_unemulated:auth(),
                 <<"outgoing_pools">> => outgoing_pools(global_config),
                 <<"internal_databases">> => internal_databases(),
                 <<"services">> => mongoose_config_spec_unemulated:services(),
                 <<"modules">> => Modules#section{include = always},
                 <<"instrumentation">> => mongoose_config_spec_unemulated:instrumentation(),
                 <<"shaper">> => shaper(),
                 <<"acl">> => acl(),
                 <<"access">> => access(),
                 <<"s2s">> => mongoose_config_spec_unemulated:s2s(),
                 <<"host_config">> => #list{items = host_config(), wrap = none}},
       defaults = #{<<"internal_databases">> => #{mnesia => #{}}},
       required = [<<"general">>],
       process = fun ?MODULE:process_dynamic_domains/1,
       wrap = none,
       format_items = list}.

%% path: host_config[]
host_config() ->
    #section{
       %% `host_type' (or its old synonym `host') goes into the path of the
       %% element; the options below then apply to that host type only.
       items = #{<<"host">> => #option{type = binary, validate = non_empty, wrap = remove},
                 <<"host_type">> => #option{type = binary, validate = non_empty, wrap = remove},
                 %% only options wrapped with `host_config' are accepted here
                 <<"general">> => general(),
                 <<"auth">> => mongoose_config_spec_unemulated:auth(),
                 <<"modules">> => modules(),
                 <<"outgoing_pools">> => outgoing_pools(host_config),
                 <<"acl">> => acl(),
                 <<"access">> => access(),
                 <<"s2s">> => mongoose_config_spec_unemulated:s2s()},
       wrap = none,
       format_items = list}.

%% path: general
general() ->
    #section{
       items = #{<<"loglevel">> => #option{type = atom, validate = loglevel,
                                           wrap = global_config},
                 <<"hosts">> => #list{items = #option{type = binary, validate = non_empty,
                                                      process = fun ?MODULE:process_host/1},
                                      validate = unique,
                                      wrap = global_config},
                 <<"host_types">> => #list{items = #option{type = binary, validate = non_empty},
                                           validate = unique,
                                           wrap = global_config},
                 <<"default_server_domain">> => #option{type = binary, validate = non_empty,
                                                        process = fun ?MODULE:process_host/1,
                                                        wrap = global_config},
                 <<"registration_timeout">> => #option{type = int_or_infinity,
                                                       validate = positive,
                                                       wrap = global_config},
                 <<"language">> => #option{type = binary, validate = non_empty,
                                           wrap = global_config},
                 %% MongooseIM checks that the backend module exists; these
                 %% are the backends of MongooseIM 6.8
                 <<"sm_backend">> => #option{type = atom,
                                             validate = {enum, [mnesia, cets, redis]},
                                             wrap = global_config},
                 <<"component_backend">> => #option{type = atom,
                                                    validate = {enum, [mnesia, cets]},
                                                    wrap = global_config},
                 <<"s2s_backend">> => #option{type = atom, validate = {enum, [mnesia, cets]},
                                              wrap = global_config},
                 <<"http_server_name">> => #option{type = string, wrap = global_config},
                 <<"route_subdomains">> => #option{type = atom, validate = {enum, [s2s]},
                                                   wrap = host_config},
                 <<"routing_modules">> => mongoose_config_spec_unemulated:routing_modules(),
                 <<"replaced_wait_timeout">> => #option{type = integer, validate = positive,
                                                        wrap = host_config},
                 <<"hide_service_name">> => #option{type = boolean, wrap = global_config}},
       wrap = none,
       format_items = list}.

general_defaults() ->
    #{<<"loglevel">> => warning,
      <<"hosts">> => [],
      <<"host_types">> => [],
      <<"registration_timeout">> => 600,
      <<"language">> => <<"en">>,
      <<"sm_backend">> => mnesia,
      <<"component_backend">> => mnesia,
      <<"s2s_backend">> => mnesia,
      <<"replaced_wait_timeout">> => 2000,
      <<"hide_service_name">> => false}.

%% path: internal_databases
internal_databases() ->
    #section{items = #{<<"cets">> => internal_database_cets(),
                       <<"mnesia">> => #section{}},
             format_items = map,
             wrap = global_config}.

%% path: internal_databases.cets
internal_database_cets() ->
    #section{items = #{<<"backend">> => #option{type = atom, validate = {enum, [file, rdbms]}},
                       <<"cluster_name">> => #option{type = atom, validate = non_empty},
                       <<"node_list_file">> => #option{type = string, validate = filename}},
             defaults = #{<<"backend">> => rdbms,
                          <<"cluster_name">> => mongooseim}}.

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
    #section{items = #{<<"type">> => #option{type = atom,
                                             validate = {enum, [no_queue, one_queue,
                                                                parallel, queues]}},
                       <<"workers">> => #option{type = integer, validate = positive}},
             required = [<<"type">>],
             process = fun ?MODULE:process_iqdisc/1}.

-spec process_iqdisc(#{type := atom(), workers => pos_integer()}) ->
          atom() | {queues, pos_integer()}.
process_iqdisc(#{type := queues, workers := N}) -> {queues, N};
process_iqdisc(#{type := Type, workers := _}) ->
    error(#{what => iqdisc_workers_without_queues, type => Type,
            text => <<"iqdisc.workers goes with type = queues only">>});
process_iqdisc(#{type := Type}) -> Type.

%% path: outgoing_pools, host_config[].outgoing_pools
%% The connections of `http' and `rabbit' pools are emulated; those of other
%% types are kept unvalidated (our product ignores those pools).
outgoing_pools(Scope) ->
    Types = [<<"cassandra">>, <<"elastic">>, <<"http">>, <<"ldap">>,
             <<"rabbit">>, <<"rdbms">>, <<"redis">>],
    Items = [{Type, #section{items = #{default => outgoing_pool(Scope, Type)},
                             validate_keys = non_empty,
                             wrap = none,
                             format_items = list}} || Type <- Types],
    #section{items = maps:from_list(Items),
             format_items = list,
             wrap = Scope,
             include = case Scope of
                           global_config -> always;
                           host_config -> when_present
                       end}.

%% path: (host_config[].)outgoing_pools.*.*
outgoing_pool(Scope, Type) ->
    Pool = mongoose_config_utils:merge_sections(wpool(extra_wpool_defaults(Type)),
                                                outgoing_pool_extra(Scope, Type)),
    Pool#section{wrap = item}.

extra_wpool_defaults(<<"cassandra">>) -> #{<<"workers">> => 20};
extra_wpool_defaults(<<"rdbms">>) -> #{<<"call_timeout">> => 60000};
extra_wpool_defaults(_) -> #{}.

%% @doc The generic worker pool options, with extra or changed defaults.
-spec wpool(#{binary() => term()}) -> config_section().
wpool(ExtraDefaults) ->
    #section{items = #{<<"workers">> => #option{type = integer, validate = positive},
                       <<"strategy">> => #option{type = atom,
                                                 validate = {enum, wpool_strategies()}},
                       <<"call_timeout">> => #option{type = integer, validate = positive},
                       <<"max_worker_queue_len">> => #option{type = integer,
                                                             validate = non_negative}},
             defaults = maps:merge(#{<<"workers">> => 10,
                                     <<"strategy">> => best_worker,
                                     <<"call_timeout">> => 5000}, ExtraDefaults)}.

wpool_strategies() ->
    [best_worker, random_worker, next_worker, available_worker, next_available_worker].

%% A pool in host_config belongs to that host type and takes no `scope'.
outgoing_pool_extra(host_config, Type) ->
    #section{items = #{<<"connection">> => outgoing_pool_connection(Type)},
             process = fun ?MODULE:process_host_config_pool/2};
outgoing_pool_extra(global_config, Type) ->
    #section{items = #{<<"scope">> => #option{type = atom,
                                              validate = {enum, [global, host_type, host]}},
                       <<"connection">> => outgoing_pool_connection(Type)},
             process = fun ?MODULE:process_pool/2,
             defaults = #{<<"scope">> => global}}.

%% path: (host_config[].)outgoing_pools.*.*.connection
outgoing_pool_connection(<<"http">>) ->
    #section{items = #{<<"host">> => #option{type = string, validate = non_empty},
                       <<"path_prefix">> => #option{type = binary, validate = non_empty},
                       <<"request_timeout">> => #option{type = integer, validate = non_negative},
                       <<"tls">> => tls([client])},
             include = always,
             required = [<<"host">>],
             defaults = #{<<"path_prefix">> => <<"/">>,
                          <<"request_timeout">> => 2000}};
outgoing_pool_connection(<<"rabbit">>) ->
    #section{items = #{<<"host">> => #option{type = string, validate = non_empty},
                       <<"port">> => #option{type = integer, validate = port},
                       <<"username">> => #option{type = binary, validate = non_empty},
                       <<"password">> => #option{type = binary, validate = non_empty},
                       <<"virtual_host">> => #option{type = binary, validate = non_empty},
                       <<"confirms_enabled">> => #option{type = boolean},
                       <<"tls">> => tls([client]),
                       <<"reconnect">> => rabbit_reconnect()},
             include = always,
             defaults = #{<<"host">> => "localhost",
                          <<"port">> => 5672,
                          <<"username">> => <<"guest">>,
                          <<"password">> => <<"guest">>,
                          <<"virtual_host">> => <<"/">>,
                          <<"confirms_enabled">> => false}};
outgoing_pool_connection(_Other) ->
    mongoose_config_spec_unemulated:pool_connection().

%% path: (host_config[].)outgoing_pools.rabbit.*.connection.reconnect
rabbit_reconnect() ->
    #section{items = #{<<"attempts">> => #option{type = integer, validate = non_negative},
                       <<"delay">> => #option{type = integer, validate = non_negative}},
             defaults = #{<<"attempts">> => 0,
                          <<"delay">> => 2000}, % ms
             include = always}.

%% @doc A TLS section: the common options plus those of each entity
%% (`client', `server', `xmpp', `xmpp_tls').
-spec tls([client | server | xmpp | xmpp_tls]) -> config_section().
tls(Entities) when is_list(Entities) ->
    lists:foldl(fun(Entity, Acc) ->
                        mongoose_config_utils:merge_sections(Acc, tls_part(Entity))
                end, tls_part(common), Entities).

tls_part(common) ->
    #section{items = #{<<"verify_mode">> => #option{type = atom,
                                                    validate = {enum, [peer, selfsigned_peer,
                                                                       none]}},
                       <<"certfile">> => #option{type = string, validate = filename},
                       <<"cacertfile">> => #option{type = string, validate = filename},
                       <<"ciphers">> => #option{type = string},
                       <<"keyfile">> => #option{type = string, validate = filename},
                       <<"password">> => #option{type = string},
                       <<"versions">> => #list{items = #option{type = atom}},
                       <<"disconnect_on_failure">> => #option{type = boolean},
                       <<"crl_files">> => #list{items = #option{type = string,
                                                                validate = filename}}},
             defaults = #{<<"verify_mode">> => peer,
                          <<"disconnect_on_failure">> => true,
                          <<"crl_files">> => []},
             process = fun ?MODULE:process_tls/1};
tls_part(client) ->
    #section{items = #{<<"server_name_indication">> => server_name_indication()}};
tls_part(server) ->
    #section{items = #{<<"dhfile">> => #option{type = string, validate = filename},
                       <<"early_data">> => #option{type = boolean},
                       <<"session_tickets">> => #option{type = atom,
                                                        validate = {enum, [stateless]}}}};
tls_part(xmpp) ->
    xmpp_tls_mode(starttls);
tls_part(xmpp_tls) ->
    xmpp_tls_mode(tls).

xmpp_tls_mode(DefaultMode) ->
    #section{items = #{<<"mode">> => #option{type = atom,
                                             validate = {enum, [tls, starttls,
                                                                starttls_required]}},
                       <<"keep_secrets">> => #option{type = boolean}},
             defaults = #{<<"mode">> => DefaultMode,
                          <<"keep_secrets">> => false}}.

%% path: ...tls.server_name_indication
server_name_indication() ->
    #section{items = #{<<"enabled">> => #option{type = boolean},
                       <<"host">> => #option{type = string, validate = non_empty},
                       <<"protocol">> => #option{type = atom, validate = {enum, [default, https]}}},
             defaults = #{<<"enabled">> => true,
                          <<"protocol">> => default},
             include = always}.

%% path: shaper
shaper() ->
    MaxRate = #option{type = integer, validate = positive},
    #section{items = #{default => #section{items = #{<<"max_rate">> => MaxRate},
                                           required = all}},
             validate_keys = non_empty,
             wrap = global_config}.

%% path: (host_config[].)acl
acl() ->
    #section{items = #{default => #list{items = acl_item()}},
             wrap = host_config}.

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
    #section{items = #{default => #list{items = access_rule_item()}},
             wrap = host_config}.

%% path: (host_config[].)access.*[]
access_rule_item() ->
    #section{items = #{<<"acl">> => #option{type = atom, validate = non_empty},
                       <<"value">> => #option{type = int_or_atom}},
             required = all}.

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
    case jid:nodeprep(Host) of
        error -> error(#{what => invalid_host_name, host => Host});
        Node -> Node
    end.

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
process_pool([Tag, Type | _], AllOpts = #{scope := Scope, connection := ConnOpts}) ->
    #{type => b2a(Type),
      scope => pool_scope(Scope),
      tag => b2a(Tag),
      opts => verify_pool_strategy(maps:without([scope, host, connection], AllOpts)),
      conn_opts => ConnOpts}.

%% @doc A pool of host_config: its scope is the host type.
-spec process_host_config_pool(mongoose_config_parser_toml:path(), map()) -> map().
process_host_config_pool([Tag, Type, _Pools, {host, HostType} | _],
                         AllOpts = #{connection := ConnOpts}) ->
    #{type => b2a(Type),
      scope => HostType,
      tag => b2a(Tag),
      opts => verify_pool_strategy(maps:remove(connection, AllOpts)),
      conn_opts => ConnOpts}.

%% `host' is MongooseIM's deprecated name of `host_type'
pool_scope(host) -> host_type;
pool_scope(host_type) -> host_type;
pool_scope(global) -> global.

verify_pool_strategy(Opts = #{strategy := Strategy, max_worker_queue_len := _})
  when Strategy =/= best_worker ->
    error(#{what => invalid_worker_pool_strategy_option,
            text => <<"max_worker_queue_len requires strategy = best_worker">>,
            pool_options => Opts});
verify_pool_strategy(Opts) ->
    Opts.

%% @doc An ACL condition (user, server, resource or a pattern of one) is
%% nodeprep'd, as MongooseIM stores it.
-spec process_acl_condition(binary()) -> binary().
process_acl_condition(Value) ->
    case jid:nodeprep(Value) of
        error -> error(#{what => incorrect_acl_condition_value,
                         text => <<"Not a valid JID node part">>});
        Node -> Node
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
