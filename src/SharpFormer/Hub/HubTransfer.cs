using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;

namespace SharpFormer.Hub;

/// <summary>One file to fetch: where its bytes are, the checksum it must have, where it is written and finally goes.</summary>
/// <param name="RepoId">The model id (for messages).</param>
/// <param name="File">The file's path in the repository (for messages and progress).</param>
/// <param name="Location">Where the bytes are (redirects followed).</param>
/// <param name="Size">The expected length, when known.</param>
/// <param name="Expected">The checksum the content must have (see <see cref="HubTransfer.Checksum"/>); anything else verifies nothing.</param>
/// <param name="Incomplete">The partial file, continued with <c>Range</c> by the next attempt or run.</param>
/// <param name="Final">Where the verified file is moved.</param>
/// <param name="ThrowIfFailed">The source's one-line error for a failed answer.</param>
/// <param name="Relocate">A fresh location when the CDN refuses an expired one, or null when the source has none.</param>
internal sealed record HubFetch(string RepoId, string File, Uri Location, long? Size, string Expected, string Incomplete, string Final,
    Action<HttpResponseMessage> ThrowIfFailed, Func<CancellationToken, Task<Uri>>? Relocate);

/// <summary>
/// The HTTP work every hub source shares: requests carrying the source's credentials to its own host only (redirects are
/// followed here, each hop a new request, so neither a token nor a cookie reaches the CDN a hub redirects to), and resumable, verified file downloads: bytes go to an incomplete file continued with <c>Range</c>
/// after a dropped connection, are checked against the expected checksum, and only then moved to their final place, so
/// a failure never leaves a half or corrupt file where a model is read from.
/// </summary>
internal sealed class HubTransfer : IDisposable
{
    const int Attempts = 3;
    readonly string authority;
    readonly Action<HttpRequestMessage>? authorize;
    readonly string cacheRoot;

    /// <summary>A transfer talking to <paramref name="endpoint"/>, whose requests <paramref name="authorize"/> adds credentials to.</summary>
    public HubTransfer(string endpoint, string cacheRoot, Action<HttpRequestMessage>? authorize)
    {
        authority = new Uri(endpoint).Authority;
        this.cacheRoot = cacheRoot;
        this.authorize = authorize;
        http = new HttpClient(new SocketsHttpHandler { AllowAutoRedirect = false, AutomaticDecompression = DecompressionMethods.None, UseCookies = false })
        {
            Timeout = Timeout.InfiniteTimeSpan,
        };
        http.DefaultRequestHeaders.UserAgent.ParseAdd("sharpformer/1.0");
    }

    readonly HttpClient http;

    /// <inheritdoc/>
    public void Dispose() => http.Dispose();

    /// <summary>A request, with the credentials when it goes to the source's own host.</summary>
    public HttpRequestMessage Request(HttpMethod method, Uri url)
    {
        var request = new HttpRequestMessage(method, url);
        if (url.Authority == authority) authorize?.Invoke(request);
        request.Headers.AcceptEncoding.ParseAdd("identity");
        return request;
    }

    /// <summary>
    /// Sends a request (following redirects unless <paramref name="follow"/> is false; <paramref name="range"/> is asked of
    /// every hop); no answer at all (DNS, refused, reset) becomes <see cref="HubUnreachableException"/>.
    /// </summary>
    public async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, CancellationToken ct, bool follow = true,
        HttpCompletionOption completion = HttpCompletionOption.ResponseContentRead, RangeHeaderValue? range = null)
    {
        for (int hop = 0; ; hop++)
        {
            var request = Request(method, url);
            request.Headers.Range = range;
            HttpResponseMessage response;
            try { response = await http.SendAsync(request, completion, ct); }
            catch (HttpRequestException e) when (e.StatusCode is null)
            {
                request.Dispose();
                throw new HubUnreachableException($"cannot reach {url.GetLeftPart(UriPartial.Authority)}: {e.Message}");
            }
            if (!follow || (int)response.StatusCode is < 300 or >= 400 || response.Headers.Location is not { } location || hop >= 10) return response;
            url = new Uri(url, location);
            response.Dispose();
            request.Dispose();
        }
    }

    /// <summary>
    /// Downloads <see cref="HubFetch.Location"/> into <see cref="HubFetch.Incomplete"/> (continuing what it holds), retries a
    /// dropped connection, verifies the result and moves it to <see cref="HubFetch.Final"/>. A mismatch is deleted and
    /// fetched once more; a second mismatch, a lost connection after the retries or a failed write is a one-line error
    /// naming the file.
    /// </summary>
    public async Task FetchAsync(HubFetch fetch, IProgress<HubProgress>? progress, CancellationToken ct)
    {
        var location = fetch.Location;
        Directory.CreateDirectory(Path.GetDirectoryName(fetch.Incomplete)!);
        bool mismatchSeen = false;
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                await AppendAsync(fetch, location, progress, ct);
            }
            catch (LocationExpiredException) when (attempt < Attempts && fetch.Relocate is not null)
            {
                // A signed CDN URL outlived its validity (slow links, resumed runs): ask the hub for a fresh one and continue.
                location = await fetch.Relocate(ct);
                continue;
            }
            catch (LocationExpiredException)
            {
                throw new SharpFormerException($"downloading {fetch.File} of {fetch.RepoId} failed: {location.GetLeftPart(UriPartial.Authority)} refused access");
            }
            catch (Exception e) when (IsConnectionLoss(e))
            {
                long have = File.Exists(fetch.Incomplete) ? new FileInfo(fetch.Incomplete).Length : 0;
                if (attempt >= Attempts)
                    throw new SharpFormerException($"downloading {fetch.File} of {fetch.RepoId} failed: the connection was lost ({e.Message}); {have} bytes are kept and the next run resumes from there");
                await Task.Delay(200 * attempt, ct);
                continue;
            }
            catch (IOException e) when (e is not HttpIOException)
            {
                throw new SharpFormerException($"writing {fetch.File} of {fetch.RepoId} into {cacheRoot} failed: {e.Message}");
            }
            long length = new FileInfo(fetch.Incomplete).Length;
            var actual = fetch.Size is long expected && length != expected ? $"{length} bytes instead of {expected}" : Checksum(fetch.Incomplete, fetch.Expected);
            if (actual is null || actual == fetch.Expected)
            {
                Directory.CreateDirectory(Path.GetDirectoryName(fetch.Final)!);
                File.Move(fetch.Incomplete, fetch.Final, overwrite: true);
                return;
            }
            File.Delete(fetch.Incomplete);
            if (mismatchSeen)
                throw new SharpFormerException($"{fetch.File} of {fetch.RepoId} failed verification twice (expected {fetch.Expected}, got {actual}); the download was deleted");
            mismatchSeen = true;
        }
    }

    static bool IsConnectionLoss(Exception e) =>
        e is HttpIOException or HubUnreachableException || e is HttpRequestException { StatusCode: null } || e is IOException { InnerException: SocketException };

    /// <summary>GETs <paramref name="location"/> into the incomplete file, continuing what it holds with a Range request.</summary>
    async Task AppendAsync(HubFetch fetch, Uri location, IProgress<HubProgress>? progress, CancellationToken ct)
    {
        var incomplete = fetch.Incomplete;
        long have = File.Exists(incomplete) ? new FileInfo(incomplete).Length : 0;
        if (fetch.Size is long total && have == total) return;
        using var response = await SendAsync(HttpMethod.Get, location, ct, completion: HttpCompletionOption.ResponseHeadersRead,
            range: have > 0 ? new RangeHeaderValue(have, null) : null);
        if (response.StatusCode == HttpStatusCode.RequestedRangeNotSatisfiable) { File.Delete(incomplete); throw new HttpIOException(HttpRequestError.ResponseEnded, "the server refused to continue the partial download"); }
        if (response.StatusCode is HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden && response.RequestMessage?.RequestUri?.Authority != authority)
            throw new LocationExpiredException();
        fetch.ThrowIfFailed(response);
        bool resumed = response.StatusCode == HttpStatusCode.PartialContent;
        if (!resumed) have = 0;
        await using var output = new FileStream(incomplete, resumed ? FileMode.Append : FileMode.Create, FileAccess.Write, FileShare.None);
        await using var input = await response.Content.ReadAsStreamAsync(ct);
        var buffer = new byte[1 << 16];
        int n;
        while ((n = await input.ReadAsync(buffer, ct)) > 0)
        {
            await output.WriteAsync(buffer.AsMemory(0, n), ct);
            have += n;
            progress?.Report(new HubProgress(fetch.File, have, fetch.Size));
        }
    }

    /// <summary>
    /// The checksum <paramref name="expected"/> names, computed over the file: SHA-256 for 64 hex digits (LFS etags,
    /// ModelScope's Sha256), git's blob SHA-1 (<c>"blob LEN\0" + bytes</c>) for 40; null when it is neither (nothing to
    /// verify against).
    /// </summary>
    public static string? Checksum(string path, string expected)
    {
        using var stream = File.OpenRead(path);
        if (expected.Length == 64 && IsHex(expected)) return Convert.ToHexStringLower(SHA256.HashData(stream));
        if (expected.Length != 40 || !IsHex(expected)) return null;
        using var sha1 = IncrementalHash.CreateHash(HashAlgorithmName.SHA1);
        sha1.AppendData(Encoding.ASCII.GetBytes($"blob {stream.Length}\0"));
        var buffer = new byte[1 << 16];
        int n;
        while ((n = stream.Read(buffer)) > 0) sha1.AppendData(buffer, 0, n);
        return Convert.ToHexStringLower(sha1.GetHashAndReset());
    }

    static bool IsHex(string s) => s.All(char.IsAsciiHexDigitLower);

    /// <summary>
    /// Holds the lock file <paramref name="path"/> for as long as the returned object lives: an exclusive open, which .NET
    /// takes as an advisory <c>flock</c> on Unix (the lock Python's <c>filelock</c> takes too), waited for while another
    /// process holds it.
    /// </summary>
    public static async Task<IDisposable> LockAsync(string path, CancellationToken ct)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        while (true)
        {
            try { return new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None); }
            catch (IOException) when (!ct.IsCancellationRequested) { await Task.Delay(50, ct); }
        }
    }

    /// <summary>The value of a response header, or null.</summary>
    public static string? Header(HttpResponseMessage response, string name) =>
        response.Headers.TryGetValues(name, out var values) ? values.FirstOrDefault() : null;

    /// <summary>The CDN refused a location the hub gave (its signature expired).</summary>
    sealed class LocationExpiredException() : Exception("the download location expired");
}

/// <summary>No answer at all (DNS, refused, reset): the one case where a cached snapshot may stand in.</summary>
internal sealed class HubUnreachableException(string message) : SharpFormerException(message);
