%% @doc Test host: MongooseIM's config validators, by MongooseIM's names.
%%
%% A validator returns anything on success and raises `error' on failure; the
%% parser turns the exception into a config error naming the TOML path.
%% Failures raise either a map with `what' (and details) or a plain
%% `function_clause'/`badmatch', as MongooseIM's validators do.
-module(mongoose_config_validator).

-export([validate/3,
         validate_section/2,
         validate_list/2]).

-type validator() ::
        any | non_empty | non_negative | positive | module | {module, Prefix :: atom()}
      | mongooseim_module
      | jid | jid_localpart | domain | subdomain_template | url | ip_address | ip_mask
      | network_address | port | filename | dirname | loglevel | instrumentation_loglevel
      | pool_name | shaper | access_rule | {enum, list()}.

-type section_validator() :: any | non_empty.

-type list_validator() :: any | non_empty | unique | unique_non_empty.

-export_type([validator/0, section_validator/0, list_validator/0]).

-spec validate(mongoose_config_parser_toml:option_value(),
               mongoose_config_spec:option_type(), validator()) -> ok.
validate(V, binary, domain) -> validate_domain(V);
validate(V, binary, url) -> validate_non_empty_binary(V);
validate(V, binary, non_empty) -> validate_non_empty_binary(V);
validate(V, binary, subdomain_template) -> validate_subdomain_template(V);
validate(V, binary, {module, Prefix}) -> validate_module(prefixed(Prefix, V));
validate(V, binary, jid) -> validate_jid(V);
validate(V, binary, jid_localpart) -> validate_jid_localpart(V);
validate(V, integer, non_negative) -> validate_non_negative_integer(V);
validate(V, integer, positive) -> validate_positive_integer(V);
validate(V, integer, port) -> validate_port(V);
validate(V, int_or_infinity, non_negative) -> validate_non_negative_integer_or_infinity(V);
validate(V, int_or_infinity, positive) -> validate_positive_integer_or_infinity(V);
validate(V, string, url) -> validate_non_empty_string(V);
validate(V, string, domain) -> validate_domain(V);
validate(V, string, subdomain_template) -> validate_subdomain_template(V);
validate(V, string, ip_address) -> validate_ip_address(V);
validate(V, string, ip_mask) -> validate_ip_mask(V);
validate(V, string, network_address) -> validate_network_address(V);
validate(V, string, filename) -> validate_filename(V);
validate(V, string, non_empty) -> validate_non_empty_string(V);
validate(V, string, dirname) -> validate_dirname(V);
validate(V, atom, module) -> validate_module(V);
validate(V, atom, mongooseim_module) -> validate_mongooseim_module(V);
validate(V, atom, {module, Prefix}) -> validate_module(prefixed(Prefix, V));
validate(V, atom, loglevel) -> validate_loglevel(V);
validate(V, atom, instrumentation_loglevel) -> validate_instrumentation_loglevel(V);
validate(V, atom, pool_name) -> validate_non_empty_atom(V);
validate(V, atom, shaper) -> validate_non_empty_atom(V);
validate(V, atom, access_rule) -> validate_non_empty_atom(V);
validate(V, atom, non_empty) -> validate_non_empty_atom(V);
validate(V, _, {enum, Values}) -> validate_enum(V, Values);
validate(_V, _, any) -> ok.

-spec validate_list([mongoose_config_parser_toml:config_part()], list_validator()) -> ok.
validate_list([_|_], non_empty) -> ok;
validate_list(L = [_|_], unique_non_empty) -> validate_unique_items(L);
validate_list(L, unique) -> validate_unique_items(L);
validate_list(L, any) when is_list(L) -> ok.

-spec validate_section([mongoose_config_parser_toml:config_part()], section_validator()) -> ok.
validate_section([_|_], non_empty) -> ok;
validate_section(L, any) when is_list(L) -> ok.

%% Validators

prefixed(Prefix, Name) when is_binary(Name) ->
    prefixed(Prefix, binary_to_atom(Name, utf8));
prefixed(Prefix, Name) ->
    list_to_atom(atom_to_list(Prefix) ++ "_" ++ atom_to_list(Name)).

validate_non_empty_binary(V) when is_binary(V), V =/= <<>> -> ok.

validate_non_empty_string(V) when is_list(V), V =/= "" -> ok.

validate_non_empty_atom(V) when is_atom(V), V =/= '' -> ok.

validate_positive_integer(V) when is_integer(V), V > 0 -> ok.

validate_non_negative_integer(V) when is_integer(V), V >= 0 -> ok.

validate_non_negative_integer_or_infinity(infinity) -> ok;
validate_non_negative_integer_or_infinity(V) -> validate_non_negative_integer(V).

validate_positive_integer_or_infinity(infinity) -> ok;
validate_positive_integer_or_infinity(V) -> validate_positive_integer(V).

validate_port(V) when is_integer(V), V >= 0, V =< 65535 -> ok.

validate_unique_items(Items) ->
    case length(lists:usort(Items)) =:= length(Items) of
        true -> ok;
        false -> error(#{what => validate_unique_items_failed,
                         duplicates => Items -- lists:usort(Items)})
    end.

validate_enum(V, Values) ->
    case lists:member(V, Values) of
        true -> ok;
        false -> error(#{what => validate_enum_failed, value => V, allowed_values => Values})
    end.

validate_module(Mod) ->
    case code:ensure_loaded(Mod) of
        {module, _} -> ok;
        Other -> error(#{what => module_not_found, module => Mod, reason => Other})
    end.

%% (ours) A `[modules]' key: loadable here, or a MongooseIM module that the
%% test host accepts without starting it.
validate_mongooseim_module(Mod) ->
    case mongoose_config_spec_unemulated:is_mongooseim_module(Mod) of
        true -> ok;
        false -> validate_module(Mod)
    end.

%% MongooseIM's log levels (mongoose_logs), `none' and `all' included.
validate_loglevel(Level) ->
    Levels = [none, emergency, alert, critical, error, warning, notice, info, debug, all],
    case lists:member(Level, Levels) of
        true -> ok;
        false -> error(#{what => validate_loglevel_failed, value => Level})
    end.

validate_instrumentation_loglevel(none) ->
    error(#{what => validate_instrumentation_loglevel_failed, value => none});
validate_instrumentation_loglevel(Level) ->
    validate_loglevel(Level).

validate_jid(Bin) ->
    case jid:from_binary(Bin) of
        error -> error(#{what => validate_jid_failed, value => Bin});
        _Jid -> ok
    end.

validate_jid_localpart(V) ->
    case jid:nodeprep(V) of
        error -> error(#{what => validate_jid_localpart_failed, value => V,
                         text => <<"Not a valid JID user part">>});
        _ -> ok
    end.

%% `<prefix>.@HOST@' or a plain domain name, as mongoose_subdomain_utils reads it.
validate_subdomain_template(Template) ->
    Bin = unicode:characters_to_binary(Template),
    Domain = case re:replace(Bin, "\\.@HOST@$", ".", [{return, binary}]) of
                 Bin -> Bin;
                 Prefix -> <<Prefix/binary, "example.com">>
             end,
    case inet_parse:domain(binary_to_list(Domain)) of
        true -> ok;
        false -> error(#{what => validate_subdomain_template_failed,
                         text => <<"Expected a domain or <prefix>.@HOST@">>,
                         subdomain_template => Template})
    end.

%% MongooseIM also tries to resolve the name and only warns when it cannot;
%% the test host skips the DNS lookup, which would only log.
validate_domain(Domain) when is_binary(Domain) ->
    validate_domain(binary_to_list(Domain));
validate_domain(Domain) ->
    case inet_parse:domain(Domain) of
        true -> ok;
        false -> error(#{what => validate_domain_failed, text => <<"Not a valid domain name">>,
                         domain => Domain})
    end.

validate_ip_address(V) ->
    {ok, _} = inet:parse_address(V),
    ok.

%% "IP/Mask" (or a bare IP), the mask within the address family's range.
validate_ip_mask(V) ->
    validate_non_empty_string(V),
    {IP, Mask} = case string:split(V, "/") of
                     [Addr] -> {ok, A} = inet:parse_address(Addr), {A, full_mask(A)};
                     [Addr, M] -> {ok, A} = inet:parse_address(Addr), {A, list_to_integer(M)}
                 end,
    true = Mask >= 0 andalso Mask =< full_mask(IP),
    ok.

full_mask(IP) when tuple_size(IP) =:= 4 -> 32;
full_mask(IP) when tuple_size(IP) =:= 8 -> 128.

validate_network_address(V) ->
    Results = [try ok = F(V) catch error:Reason -> #{reason => Reason} end
               || F <- [fun validate_domain/1, fun validate_ip_address/1]],
    case lists:member(ok, Results) of
        true -> ok;
        false -> error(#{what => validate_oneof_failed, validation_results => Results})
    end.

validate_filename(Filename) ->
    case file:read_file_info(Filename) of
        {ok, _} -> ok;
        Reason -> error(#{what => invalid_filename, filename => Filename, reason => Reason})
    end.

validate_dirname(Dirname) ->
    case file:list_dir(Dirname) of
        {ok, _} -> ok;
        Reason -> error(#{what => invalid_dirname, dirname => Dirname, reason => Reason})
    end.
