%% @doc A TCP proxy in front of the SNS endpoint (moto) that tests control,
%% built on ep_tcp_proxy: `up' relays connections and records every HTTP
%% request that passes (its `Action' and batch size); `down' accepts and
%% closes each connection at once, like an endpoint that is unreachable, and
%% counts the attempts. Listens on 127.0.0.1; not linked to its starter.
-module(ep_sns_proxy).

-export([start/1, stop/1, url/1, up/1, down/1, requests/1, refused/1]).

%% One HTTP request that went through: its form-encoded body's Action and
%% parameters.
-type request() :: #{action := binary(), entries := non_neg_integer(),
                     params := [{binary(), binary()}]}.
-export_type([request/0]).

%%====================================================================
%% API
%%====================================================================

%% @doc A proxy to 127.0.0.1:UpstreamPort, `up'.
-spec start(inet:port_number()) -> {ok, pid()}.
start(UpstreamPort) ->
    ep_tcp_proxy:start(UpstreamPort, fun(Proxy, Client, Server) ->
                                             relay_requests(Proxy, Client, Server, <<>>)
                                     end).

-spec stop(pid()) -> ok.
stop(Proxy) ->
    ep_tcp_proxy:stop(Proxy).

%% @doc The proxy's URL, for `sns_host'.
-spec url(pid()) -> string().
url(Proxy) ->
    "http://127.0.0.1:" ++ integer_to_list(ep_tcp_proxy:port(Proxy)).

-spec up(pid()) -> ok.
up(Proxy) ->
    ep_tcp_proxy:up(Proxy).

%% @doc From now on every connection is closed at once; open ones are cut.
-spec down(pid()) -> ok.
down(Proxy) ->
    ep_tcp_proxy:down(Proxy).

%% @doc The requests relayed so far, oldest first.
-spec requests(pid()) -> [request()].
requests(Proxy) ->
    ep_tcp_proxy:recorded(Proxy).

%% @doc How many connections were closed because the proxy was down.
-spec refused(pid()) -> non_neg_integer().
refused(Proxy) ->
    ep_tcp_proxy:refused(Proxy).

%%====================================================================
%% Requests
%%====================================================================

%% Client -> upstream, request by request (to record each).
relay_requests(Proxy, Client, Server, Buffer) ->
    case take_request(Buffer) of
        {ok, Raw, Body, Rest} ->
            ok = gen_tcp:send(Server, Raw),
            ep_tcp_proxy:record(Proxy, parse_body(Body)),
            relay_requests(Proxy, Client, Server, Rest);
        more ->
            case gen_tcp:recv(Client, 0) of
                {ok, Data} ->
                    relay_requests(Proxy, Client, Server, <<Buffer/binary, Data/binary>>);
                {error, _} ->
                    gen_tcp:close(Server)
            end
    end.

%% One complete request (head and Content-Length body) off the buffer.
take_request(Buffer) ->
    case binary:match(Buffer, <<"\r\n\r\n">>) of
        nomatch ->
            more;
        {Pos, 4} ->
            HeadLen = Pos + 4,
            Length = content_length(binary:part(Buffer, 0, Pos)),
            case byte_size(Buffer) >= HeadLen + Length of
                true ->
                    Raw = binary:part(Buffer, 0, HeadLen + Length),
                    Body = binary:part(Buffer, HeadLen, Length),
                    Rest = binary:part(Buffer, HeadLen + Length,
                                       byte_size(Buffer) - HeadLen - Length),
                    {ok, Raw, Body, Rest};
                false ->
                    more
            end
    end.

content_length(Head) ->
    Lines = binary:split(Head, <<"\r\n">>, [global]),
    Lengths = [binary_to_integer(string:trim(Value))
               || Line <- Lines,
                  [Name, Value] <- [binary:split(Line, <<":">>)],
                  string:lowercase(string:trim(Name)) =:= <<"content-length">>],
    case Lengths of
        [Length | _] -> Length;
        [] -> 0
    end.

parse_body(Body) ->
    Params = case uri_string:dissect_query(Body) of
                 L when is_list(L) -> [{to_bin(K), to_bin(V)} || {K, V} <- L];
                 _ -> []
             end,
    Entries = length([K || {K, _} <- Params,
                           binary:match(K, <<"PublishBatchRequestEntries.member.">>) =/= nomatch,
                           binary:longest_common_suffix([K, <<".Id">>]) =:= 3]),
    #{action => proplists:get_value(<<"Action">>, Params, <<>>),
      entries => Entries, params => Params}.

to_bin(true) -> <<>>;
to_bin(V) when is_binary(V) -> V;
to_bin(V) when is_list(V) -> unicode:characters_to_binary(V).
