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

%% Dispatch on the option's type and the validator's name; a pair that is not
%% in the table fails with `function_clause', as an unmatched clause would.
-spec validate(mongoose_config_parser_toml:option_value(),
               mongoose_config_spec:option_type(), validator()) -> ok.
validate(_Value, _Type, any) ->
    ok;
validate(Value, _Type, {enum, Allowed}) ->
    validate_enum(Value, Allowed);
validate(Value, Type, {module, Prefix}) when Type =:= binary; Type =:= atom ->
    validate_module(prefixed(Prefix, Value));
validate(Value, Type, Validator) ->
    case maps:find({Type, Validator}, checks()) of
        {ok, Check} -> Check(Value);
        error -> no_clause([Value, Type, Validator])
    end.

-spec checks() -> #{{mongoose_config_spec:option_type(), atom()} => fun((term()) -> ok)}.
checks() ->
    NonEmptyAtom = fun validate_non_empty_atom/1,
    #{{binary, non_empty} => fun validate_non_empty_binary/1,
      {binary, url} => fun validate_non_empty_binary/1,
      {binary, domain} => fun validate_domain/1,
      {binary, subdomain_template} => fun validate_subdomain_template/1,
      {binary, jid} => fun validate_jid/1,
      {binary, jid_localpart} => fun validate_jid_localpart/1,
      {string, non_empty} => fun validate_non_empty_string/1,
      {string, url} => fun validate_non_empty_string/1,
      {string, domain} => fun validate_domain/1,
      {string, subdomain_template} => fun validate_subdomain_template/1,
      {string, ip_address} => fun validate_ip_address/1,
      {string, ip_mask} => fun validate_ip_mask/1,
      {string, network_address} => fun validate_network_address/1,
      {string, filename} => fun validate_filename/1,
      {string, dirname} => fun validate_dirname/1,
      {integer, non_negative} => fun validate_non_negative_integer/1,
      {integer, positive} => fun validate_positive_integer/1,
      {integer, port} => fun validate_port/1,
      {int_or_infinity, non_negative} => fun validate_non_negative_integer_or_infinity/1,
      {int_or_infinity, positive} => fun validate_positive_integer_or_infinity/1,
      {atom, module} => fun validate_module/1,
      {atom, mongooseim_module} => fun validate_mongooseim_module/1,
      {atom, loglevel} => fun validate_loglevel/1,
      {atom, instrumentation_loglevel} => fun validate_instrumentation_loglevel/1,
      {atom, non_empty} => NonEmptyAtom,
      {atom, pool_name} => NonEmptyAtom,
      {atom, shaper} => NonEmptyAtom,
      {atom, access_rule} => NonEmptyAtom}.

-spec validate_list([mongoose_config_parser_toml:config_part()], list_validator()) -> ok.
validate_list(Items, Validator) when is_list(Items) ->
    case {Validator, Items =:= []} of
        {any, _} -> ok;
        {unique, _} -> validate_unique_items(Items);
        {non_empty, false} -> ok;
        {unique_non_empty, false} -> validate_unique_items(Items);
        _ -> no_clause([Items, Validator])
    end;
validate_list(Items, Validator) ->
    no_clause([Items, Validator]).

-spec validate_section([mongoose_config_parser_toml:config_part()], section_validator()) -> ok.
validate_section(Items, Validator) when is_list(Items), Validator =:= any;
                                         is_list(Items), Validator =:= non_empty, Items =/= [] ->
    ok;
validate_section(Items, Validator) ->
    no_clause([Items, Validator]).

%% The parser reports a refused value by the exception's reason; MongooseIM's
%% validators refuse a value of the wrong shape with `function_clause'.
-spec no_clause([term()]) -> no_return().
no_clause(Args) ->
    erlang:error(function_clause, Args).

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

validate_enum(Value, Allowed) ->
    lists:member(Value, Allowed)
        orelse error(#{what => validate_enum_failed, value => Value, allowed_values => Allowed}),
    ok.

validate_module(Module) ->
    Loaded = code:ensure_loaded(Module),
    element(1, Loaded) =:= module
        orelse error(#{what => module_not_found, module => Module, reason => Loaded}),
    ok.

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

%% As validate_loglevel/1, but an event handler cannot be switched off by level.
validate_instrumentation_loglevel(Level) when Level =/= none ->
    validate_loglevel(Level);
validate_instrumentation_loglevel(Level) ->
    error(#{what => validate_instrumentation_loglevel_failed, value => Level}).

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
    probe_path(invalid_filename, filename, Filename, fun file:read_file_info/1).

validate_dirname(Dirname) ->
    probe_path(invalid_dirname, dirname, Dirname, fun file:list_dir/1).

%% The path must be readable as its kind; the error names the kind's field.
probe_path(What, Field, Path, Probe) ->
    Result = Probe(Path),
    element(1, Result) =:= ok
        orelse error(#{what => What, Field => Path, reason => Result}),
    ok.
