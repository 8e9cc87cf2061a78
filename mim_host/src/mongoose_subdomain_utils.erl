%% @doc The test host's `mongoose_subdomain_utils': subdomain patterns as
%% MongooseIM parses them from config (`<prefix>.@HOST@' or an FQDN).
-module(mongoose_subdomain_utils).

-export([make_subdomain_pattern/1, get_fqdn/2, subdomain_type/1, is_subdomain/3]).

-type subdomain_pattern() :: {fqdn | prefix, binary()}.
-export_type([subdomain_pattern/0]).

%% @doc `"push.@HOST@"' becomes `{prefix, <<"push.">>}' (only a trailing
%% `.@HOST@' counts); anything else is `{fqdn, Value}'.
-spec make_subdomain_pattern(binary() | string()) -> subdomain_pattern().
make_subdomain_pattern(Opt) when is_list(Opt) ->
    make_subdomain_pattern(list_to_binary(Opt));
make_subdomain_pattern(Opt) when is_binary(Opt) ->
    Suffix = <<".@HOST@">>,
    Size = byte_size(Opt) - byte_size(Suffix),
    case Opt of
        <<Prefix:Size/binary, ".@HOST@">> when Size >= 0 -> {prefix, <<Prefix/binary, ".">>};
        _ -> {fqdn, Opt}
    end.

-spec get_fqdn(subdomain_pattern(), mongooseim:domain_name()) -> mongooseim:domain_name().
get_fqdn({fqdn, Subdomain}, _Domain) -> Subdomain;
get_fqdn({prefix, Prefix}, Domain) -> <<Prefix/binary, Domain/binary>>.

-spec subdomain_type(subdomain_pattern()) -> fqdn | subdomain.
subdomain_type({fqdn, _}) -> fqdn;
subdomain_type({prefix, _}) -> subdomain.

%% @doc Whether `Subdomain' is what the pattern gives for `Domain'.
-spec is_subdomain(subdomain_pattern(), mongooseim:domain_name(), mongooseim:domain_name()) ->
          boolean().
is_subdomain(Pattern, Domain, Subdomain) ->
    get_fqdn(Pattern, Domain) =:= Subdomain.
