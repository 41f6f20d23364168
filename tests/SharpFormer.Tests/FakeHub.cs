using System.Net;
using System.Security.Cryptography;
using System.Text;

namespace SharpFormer.Tests;

/// <summary>
/// An in-process HuggingFace Hub on loopback speaking the protocol huggingface_hub relies on: the model info API
/// (<c>/api/models/ORG/NAME/revision/REV</c>: sha + siblings, with <c>blobId</c>/<c>size</c>/<c>lfs.sha256</c> when
/// <c>blobs=true</c>), <c>resolve/REV/FILE</c> answering small files itself (ETag = git blob SHA-1) and redirecting LFS
/// files (<c>*.safetensors</c>, <c>*.bin</c>) to an absolute CDN-like path with <c>X-Linked-Etag</c> (SHA-256) and
/// <c>X-Linked-Size</c>, <c>X-Repo-Commit</c> everywhere, 401 + <c>X-Error-Code: GatedRepo</c> for gated repos without
/// the token, 404 + <c>RepoNotFound</c>/<c>RevisionNotFound</c>/<c>EntryNotFound</c>; as a mirror without ETags on demand.
/// </summary>
public sealed class FakeHub : FakeHubServer
{
    /// <summary>The token a gated repo accepts.</summary>
    public const string GoodToken = "hf_good";

    readonly Dictionary<string, Dictionary<string, (string Commit, Dictionary<string, byte[]> Files)>> repos = [];

    /// <summary>Answer like a mirror that strips ETag, X-Linked-Etag and X-Linked-Size.</summary>
    public bool NoEtags { get; set; }

    /// <summary>Publishes <paramref name="files"/> as <paramref name="repoId"/> at <paramref name="revision"/>; returns the commit sha.</summary>
    public string Add(string repoId, string revision, Dictionary<string, byte[]> files)
    {
        var commit = Convert.ToHexStringLower(SHA1.HashData(Encoding.UTF8.GetBytes(repoId + "@" + revision)));
        if (!repos.TryGetValue(repoId, out var revisions)) repos[repoId] = revisions = [];
        revisions[revision] = (commit, files);
        revisions[commit] = (commit, files);
        return commit;
    }

    protected override async Task HandleAsync(HttpListenerContext ctx, string path)
    {
        var req = ctx.Request;
        var res = ctx.Response;
        var api = path.StartsWith("/api/models/");
        var parts = (api ? path["/api/models/".Length..] : path[1..]).Split('/');
        var repoId = parts[0] + "/" + parts[1];
        if (!repos.TryGetValue(repoId, out var revisions)) { Fail(res, 404, "RepoNotFound"); return; }
        if (Gated.Contains(repoId) && req.Headers["Authorization"] != "Bearer " + GoodToken) { Fail(res, 401, "GatedRepo"); return; }
        if (api)
        {
            if (!revisions.TryGetValue(parts[3], out var r)) { Fail(res, 404, "RevisionNotFound"); return; }
            bool blobs = req.QueryString["blobs"] == "true";
            await Json(res, new
            {
                id = repoId, sha = r.Commit,
                siblings = r.Files.Select(f => blobs
                    ? (object)new { rfilename = f.Key, blobId = GitSha1(f.Value), size = f.Value.Length, lfs = IsLfs(f.Key) ? new { sha256 = Sha256(f.Value), size = f.Value.Length } : null }
                    : new { rfilename = f.Key }),
            });
            return;
        }
        // /ORG/NAME/resolve/REV/FILE...
        if (!revisions.TryGetValue(parts[3], out var rr)) { Fail(res, 404, "RevisionNotFound"); return; }
        var file = string.Join('/', parts[4..]);
        if (!rr.Files.TryGetValue(file, out var bytes)) { Fail(res, 404, "EntryNotFound"); return; }
        res.Headers["X-Repo-Commit"] = rr.Commit;
        if (IsLfs(file))
        {
            res.StatusCode = 302;
            res.RedirectLocation = OnCdn(file, bytes);
            if (!NoEtags)
            {
                res.Headers["X-Linked-Etag"] = $"\"{Sha256(bytes)}\"";
                res.Headers["X-Linked-Size"] = bytes.Length.ToString();
                res.Headers["ETag"] = "\"" + GitSha1(Encoding.UTF8.GetBytes("pointer " + Sha256(bytes))) + "\"";
            }
            res.Close();
            return;
        }
        if (!NoEtags) res.Headers["ETag"] = $"\"{GitSha1(bytes)}\"";
        await ServeBytes(ctx, file, bytes);
    }
}
